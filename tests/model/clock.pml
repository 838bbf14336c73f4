/*
 * The global clock of the failover model (see common.pml, "Time"). Included last by each
 * control plane, which defines OBLIGATIONS_MET: what must have happened before time may pass.
 */

/* A tick of global time, once no obligation is overdue: the control plane's ages grow
   (tick_plane), and each node's clock advances (tick_node: its lease shrinks) unless it falls
   one more tick behind. */
active proctype clock() {
end:
  do
  :: atomic {
       OBLIGATIONS_MET ->
         tick_plane();
         k = 0;
         do
         :: k < N ->
            if
            :: tick_node(k)
            :: lag[k] < DRIFT -> lag[k]++
            fi;
            k++
         :: else -> break
         od;
         k = 0
     }
  od
}
