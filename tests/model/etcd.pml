/*
 * Failover through etcd (the `etcd://` control plane of DESIGN.md and issue 13; not yet in
 * the code, so this models the design the issue prescribes): a lease per node kept alive by
 * keepalives, a leader key created under the campaigner's lease, the epoch = the leader key's
 * create_revision. Checked by tests/model/check.sh; see docs/master-slave.md, "A model,
 * checked".
 *
 * One tick is one keepalive interval (500 ms). The lease TTL is 4 ticks (2 s: etcd's TTLs are
 * whole seconds with a ~2 s floor). The master stops admitting writes on its own monotonic
 * deadline, sent_at of its last acknowledged keepalive + DEADLINE, DEADLINE = TTL - margin
 * = 3 ticks (a 500 ms margin, 25%, covering a clock DRIFT of 1 tick), never on etcd's word;
 * this is the lease the etcd adapter would hand to fulcrum::RoleState, whose write_margin
 * (100 ms) rounds to MARGIN = 0 ticks here. The broken variant passes -DDEADLINE=5: a deadline
 * longer than the TTL.
 *
 * What etcd does, as the model lets it:
 *  - A keepalive reaching etcd while the lease is not revoked renews it for TTL ticks from
 *    then. Revocation is lazy: any time at or after the TTL ran out, which covers a leader
 *    change extending leases (etcd issue 9395) and a keepalive renewing a lease that had run
 *    out but was not yet revoked. Revoking deletes the keys under the lease (the leader key,
 *    the node's position key).
 *  - Campaign is a transaction: create the leader key under the candidate's lease if it does
 *    not exist and no leader key was created since the deletion the candidate saw (the
 *    revision it decided at), so a campaign delayed past a whole term cannot elect a stale
 *    candidate. Its answer may come back arbitrarily late, after the lease expired (etcd
 *    issue 11456, Jepsen's etcd 3.4.3 analysis): the winner re-reads the key and the lease's
 *    TTL and becomes master only if the key is still its own (same create_revision) and the
 *    lease is alive.
 *  - The epoch is the leader key's create_revision. `rev` counts only leader-key events (the
 *    other keys' revisions change nothing the model checks), so it stays small.
 *  - Slaves publish their replication position (a key under their lease) once they see the
 *    leader key gone, tagged with the revision of that deletion; only the most up-to-date live
 *    slave campaigns (highest position, then lowest index), and only once every live node has
 *    published for this deletion. A position read after the deletion is read after the old
 *    master's lease was revoked, so after its deadline, so after its last acknowledgement.
 *
 * Processes: node(i) is the server's etcd session (keepalives, watching the leader key,
 * publishing its position, campaigning, re-checking a win) and RoleState::Apply; etcd_side(i)
 * is etcd processing node i's campaign and revoking its lease; writer(i), follower(i), env(),
 * clock() as in common.pml.
 *
 * Abstracted away: etcd itself is one linearizable store (its own replication, compaction,
 * watch gaps are not modelled: a node reads the key's current state when it looks); reads and
 * watches are immediate (a stale view only delays a node: writes are gated by the deadline and
 * the epoch checks); the first election (the run starts with node 0 master of revision 1);
 * the lease grant after a lost lease is immediate.
 */

#ifndef TTL
#define TTL 4
#endif
#ifndef DEADLINE
#define DEADLINE 3   /* TTL - margin; the broken variant passes -DDEADLINE=5 */
#endif
#ifndef MARGIN
#define MARGIN 0
#endif
#ifndef MAXDELAY
#define MAXDELAY 0
#endif
#ifndef W
#define W 1
#endif

#include "common.pml"

/* Node i's keepalive: the request reaches etcd in the step that sends it (renewal at sent_at:
   the worst case, a later receipt keeps the lease longer), ka 0 idle or 2 the answer in
   transit; kage: global ticks since the answer was sent; kloc: ticks on the node's clock
   since it sent the request, saturating at DEADLINE; kok: the lease was alive. */
byte ka[N];
bool ksent[N];
byte kage[N];
byte kloc[N];
bool kok[N];

/* etcd. ealive[i]: node i's lease exists (not revoked); erem[i]: ticks of TTL left on etcd's
   clock. lk: the leader key's owner + 1 (0: no key); lkc: its create_revision; rev: the
   revision of the last leader-key event. ppos/prev: node i's published position and the
   deletion revision it was published for (0: none, deleted with the lease). */
bool ealive[N];
byte erem[N];
byte lk = 1;
byte lkc = 1;
byte rev = 1;
byte ppos[N];
byte prev[N];

/* A campaign of node i: 0 none, 1 transaction in transit (crs: the revision it decided at),
   2 won (crs: the create_revision) and the answer in transit, 3 lost. No bound on either. */
byte camp[N];
byte crs[N];
hidden byte ne;       /* scratch */

#define DUE(i) (!paused[i] && ((ka[i] == 0 && !ksent[i]) || (ka[i] == 2 && kage[i] >= MAXDELAY)))
#if N > 2
#define OBLIGATIONS_MET (!DUE(0) && !DUE(1) && !DUE(2))
#else
#define OBLIGATIONS_MET (!DUE(0) && !DUE(1))
#endif

inline tick_plane() {
  k2 = 0;
  do
  :: k2 < N ->
     ksent[k2] = 0;
     if :: ka[k2] != 0 && kage[k2] < MAXDELAY -> kage[k2]++ :: else fi;
     if :: erem[k2] > 0 -> erem[k2]-- :: else fi;
     k2++
  :: else -> break
  od;
  k2 = 0
}

inline tick_node(i) {
  if :: lrem[i] > 0 -> lrem[i]-- :: else fi;
  if :: ka[i] != 0 && kloc[i] < DEADLINE -> kloc[i]++ :: else fi
}

/* Would node i, seeing no leader key, be the one to campaign? Every live node published its
   position for this deletion and none is ahead of i's. */
#define AHEAD(j, i) (j != i && ealive[j] && \
                     (prev[j] != rev || ppos[j] > ppos[i] || (ppos[j] == ppos[i] && j < i)))
#if N > 2
#define BEST(i) (!AHEAD(0, i) && !AHEAD(1, i) && !AHEAD(2, i))
#else
#define BEST(i) (!AHEAD(0, i) && !AHEAD(1, i))
#endif

proctype node(byte i) {
end:
  do
  /* Keepalive sent (and processed by etcd). */
  :: atomic {
       !paused[i] && ka[i] == 0 && !ksent[i] ->
         ka[i] = 2; ksent[i] = 1; kage[i] = 0; kloc[i] = 0;
         kok[i] = ealive[i];
         if :: ealive[i] -> erem[i] = TTL :: else fi
     }
  /* Keepalive answer: the deadline is sent_at + DEADLINE on the node's own clock; a lost
     lease ends mastership at once and the node takes a new lease (keys under the old one are
     gone). */
  :: atomic {
       !paused[i] && ka[i] == 2 ->
         if
         :: kok[i] -> lrem[i] = (DEADLINE > kloc[i] -> DEADLINE - kloc[i] : 0)
         :: else ->
            lrem[i] = 0;
            if :: role[i] == MASTER -> become(i, SLAVE, ep[i], 0) :: else fi;
            if :: !ealive[i] -> ealive[i] = 1; erem[i] = TTL :: else fi
         fi;
         exclusive(i);              /* (1) */
         ka[i] = 0; kage[i] = 0; kloc[i] = 0; kok[i] = 0
     }
  /* Watching the leader key: a master whose key is gone or not its own steps down; a slave
     follows the master it names (epoch = create_revision, never older: (2) in become). */
  :: atomic {
       !paused[i] && role[i] == MASTER && (lk != i + 1 || lkc != ep[i]) ->
         if :: lk != 0 && lkc > ep[i] -> ne = lkc :: else -> ne = ep[i] fi;
         become(i, SLAVE, ne, lk);
         ne = 0
     }
  :: atomic {
       !paused[i] && role[i] != MASTER && lk != 0 && (lkc != ep[i] || mast[i] != lk) ->
         become(i, SLAVE, lkc, lk)
     }
  /* No leader key: publish this node's position for the deletion it saw. */
  :: atomic {
       !paused[i] && role[i] != MASTER && lk == 0 && ealive[i] &&
       (prev[i] != rev || ppos[i] != POS(i)) ->
         ppos[i] = POS(i); prev[i] = rev;
         if :: mast[i] != 0 -> mast[i] = 0 :: else fi
     }
  /* Campaign, if this node is the most up-to-date live one. */
  :: atomic {
       !paused[i] && role[i] != MASTER && camp[i] == 0 && lk == 0 && ealive[i] &&
       prev[i] == rev && ppos[i] == POS(i) && BEST(i) ->
         camp[i] = 1; crs[i] = rev
     }
  /* Campaign answered: a win counts only if the key is still this node's and the lease is
     alive (re-read after winning). */
  :: atomic {
       !paused[i] && camp[i] >= 2 ->
         if
         :: camp[i] == 2 && lk == i + 1 && lkc == crs[i] && ealive[i] && erem[i] > 0 ->
            become(i, MASTER, lkc, i + 1);
            exclusive(i)            /* (1) */
         :: else
         fi;
         camp[i] = 0; crs[i] = 0
     }
  od
}

/* etcd's side for node i: the campaign transaction and the revocation of its lease. */
proctype etcd_side(byte i) {
end:
  do
  :: atomic {
       camp[i] == 1 ->
         if
         :: lk == 0 && rev == crs[i] && ealive[i] ->
            rev++; lk = i + 1; lkc = rev; camp[i] = 2; crs[i] = rev
         :: else -> camp[i] = 3; crs[i] = 0
         fi
     }
  :: atomic {
       ealive[i] && erem[i] == 0 ->
         ealive[i] = 0; ppos[i] = 0; prev[i] = 0;
         if :: lk == i + 1 -> lk = 0; rev++ :: else fi
     }
  od
}

init {
  byte i;
  atomic {
    role[0] = MASTER; ep[0] = 1; mast[0] = 1; mep[0] = 1; lrem[0] = DEADLINE;
    i = 0;
    do
    :: i < N ->
       ealive[i] = 1; erem[i] = TTL;
       if :: i > 0 -> role[i] = SLAVE; ep[i] = 1; mast[i] = 1 :: else fi;
       run node(i); run etcd_side(i); run writer(i); run follower(i);
       i++
    :: else -> break
    od;
    i = 0
  }
}

#include "clock.pml"
