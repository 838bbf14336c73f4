/*
 * The global clock of the failover model (see common.pml, "Time"). Included last by each
 * control plane, which defines OBLIGATIONS_MET: what must have happened before time may pass.
 */

/* A tick of global time, once no obligation is overdue (OBLIGATIONS_MET, defined by the
   control plane); every node's clock advances too, or falls one more tick behind. */
active proctype clock() {
end:
  do
  :: atomic {
       now < MAXT && OBLIGATIONS_MET ->
         now++;
         k = 0;
         do
         :: k < N ->
            if
            :: true
            :: lag[k] < DRIFT -> lag[k]++
            fi;
            k++
         :: else -> break
         od;
         k = 0
     }
  od
}
