/*
 * The part of the failover model both control planes share: the global clock, each node's own
 * clock, process pauses, the server's write gate (fulcrum::RoleState, runtime/src/role.cc) and
 * the kvstore's replication and acknowledgement rule (examples/kvstore/replica.cc), and the
 * three properties. registry.pml and etcd.pml include it and add the control plane that tells
 * nodes their role: the registry's heartbeats (registry/server/groups.cc) or etcd's leases,
 * keepalives and leader key (the design of issue 13).
 *
 * Time. Time is counted in ticks, and the state holds no absolute time, only how long ago
 * things happened (ages, saturating once the exact value no longer matters) and how much of a
 * lease is left, so the model has no horizon: runs of any length are checked. Every node has
 * its own monotonic clock: at each tick of global time a node's clock advances one tick, or
 * (at most DRIFT times over the run) does not, so a node's clock runs slow relative to the
 * control plane (registry, etcd), the dangerous direction for a lease holder. Between two
 * ticks any number of steps happen in any order, so a message spends 0..MAXDELAY ticks in
 * transit; the clock refuses to tick while an obligation is overdue (OBLIGATIONS_MET: a
 * message older than MAXDELAY undelivered, a running node with no heartbeat/keepalive in
 * flight, the registry's sweep not yet run in this tick).
 *
 * Pauses. env() may stop a node (SIGSTOP), PAUSES times in a run, for as long as it likes,
 * and resume it (SIGCONT); a paused node takes no step but its clock runs on (CLOCK_MONOTONIC
 * does). A node that never resumes has crashed. A pause is the model's only failure: with
 * min_insync_replicas = 1 a write lives on two nodes, so one failure must lose nothing.
 *
 * Data. Each node's log holds up to W entries; an entry is identified by its position and
 * the epoch of the master that appended it (one master per epoch, so that pair is unique,
 * and logs that agree on the epoch at a position agree before it: the check Fetch makes).
 * Values are abstracted away: only which write sits where matters for loss.
 *
 * Properties, checked as assertions at every step that can falsify them (an invariant that
 * only time can make true again needs no check when time passes):
 *  (1) exclusive(i): never two nodes whose write gate would admit a write at the same global
 *      instant. "Would admit": RoleState::Writable() on the node's own clock. A paused node
 *      counts: if it were resumed it would admit, which is the point of a pause.
 *  (2) epochs never go back: an assertion where a node's epoch changes (RoleState::Apply, the
 *      etcd watch, a campaign won) and where a replica takes data (ApplyFetch's fencing).
 *  (3) no acknowledged write lost: an acknowledged write is in the log of every master that
 *      takes over after it (checked at takeover, at each append, and at each acknowledgement
 *      for masters already in place).
 */

#ifndef N
#define N 3 /* nodes of the group */
#endif
#ifndef W
#define W 1 /* writes clients send in a run (all nodes together) */
#endif
#ifndef DRIFT
#define DRIFT 1 /* how far a node's clock may fall behind global time over the run */
#endif
#ifndef MAXDELAY
#define MAXDELAY 1 /* the longest a message spends in transit, in ticks */
#endif
#ifndef PAUSES
#define PAUSES 1 /* how many times env() may stop a node */
#endif

#define NONE 0
#define SLAVE 1
#define MASTER 2

byte lag[N];           /* ticks node i's clock has fallen behind, at most DRIFT */
bool paused[N];
byte pauses_left = PAUSES;

/* fulcrum::RoleState (runtime/include/fulcrum/role.h): role, epoch, master (index + 1, 0 =
   unknown) and lrem, what is left of the lease on the node's own clock: lease_end_ - Now(),
   0 when there is none or it ran out. */
byte role[N];
byte ep[N];
byte mast[N];
byte lrem[N];
/* RoleState::Writable(): master and Now() + write_margin < lease end.
   RoleState::LeaseValid(): master and Now() < lease end (checked before an ack). */
#define WRITABLE(i) (role[i] == MASTER && lrem[i] > MARGIN)
#define LEASE_VALID(i) (role[i] == MASTER && lrem[i] > 0)

/* kvstore::Replica (examples/kvstore/replica.cc): the log (lg[i*W + k] = epoch of the entry at
   position k+1, 0 past the end), its end and the epoch of its last entry, master_epoch_
   (mep: the epoch this node took over as master, 0 when not master) and the commit position
   (cmt): with min_insync_replicas = 1, CommitLocked() is the highest position a slave has
   fetched past, capped at the log end. */
byte lg[N * W];
byte lend[N];
byte lastep[N];
byte mep[N];
byte cmt[N];
/* replication_position = EncodePosition(last entry's epoch, log end): compared as a pair. */
#define POS(i) (lastep[i] * (W + 1) + lend[i])

/* One write per node at a time (a client call): 0 none, 1 admitted by the gate, 2 appended
   and waiting for a slave. pep: the epoch it was admitted in, wpos: its position. */
byte pend[N];
byte pep[N];
byte wpos[N];
byte wleft = W;
/* ackd[k]: epoch of the acknowledged write at position k+1 (0: none acknowledged there). */
byte ackd[W];

hidden byte k, k2;     /* scratch, reset after use (not part of the state) */

/* (3) every write acknowledged in epoch e or before is in node i's log (node i being master
   of epoch e, it is a later master for all of them; an old master's stale log need not hold
   what its successors acknowledged). */
inline check_acked(i, e) {
  k = 0;
  do
  :: k < W ->
     assert(ackd[k] == 0 || ackd[k] > e || (lend[i] > k && lg[i * W + k] == ackd[k]));
     k++
  :: else -> break
  od;
  k = 0
}

/* (3) for masters that took over after epoch e. */
inline check_later_masters(e) {
  k2 = 0;
  do
  :: k2 < N ->
     if
     :: role[k2] == MASTER && mep[k2] > e -> check_acked(k2, mep[k2])
     :: else
     fi;
     k2++
  :: else -> break
  od;
  k2 = 0
}

/* (1) no other node's gate admits writes while node i's does. */
inline exclusive(i) {
  k2 = 0;
  do
  :: k2 < N ->
     assert(k2 == i || !(WRITABLE(i) && WRITABLE(k2)));
     k2++
  :: else -> break
  od;
  k2 = 0
}

/* RoleState::Apply's change of role, epoch or master, then the listener the kvstore installs,
   Replica::OnRoleChange: a new master starts counting its slaves afresh (CheckMasterLocked
   clears slaves_), a demoted one forgets them and its waiting writers give up. */
inline become(i, r, e, m) {
  assert(e >= ep[i]);                      /* (2) */
  if
  :: r == MASTER && mep[i] != e -> mep[i] = e; cmt[i] = 0; check_acked(i, e)   /* (3) */
  :: r != MASTER -> mep[i] = 0; cmt[i] = 0
  :: else
  fi;
  role[i] = r;
  ep[i] = e;
  mast[i] = m
}

/* A slave's Follower fetching from the master it knows, as one step: Replica::Fetch on the
   master (it must be master of the epoch the slave asks for, and not paused) and
   Replica::ApplyFetch on the slave (fencing: nothing from an epoch older than what it holds or
   knows). The master's answer is the entries after the slave's end, or a snapshot when the
   slave's last entry does not match; either way the slave ends up with a copy of the master's
   log, which is what the step does. The master counts the slave as having fetched past its
   log end (its match), so a write is acknowledged once one slave holds it. The transit of the
   answer is abstracted: the slave holds the data before the master counts it in the real code
   too (the match moves on the slave's next fetch), and the fencing check is the same later. */
proctype follower(byte i) {
end:
  do
  :: atomic {
       !paused[i] && role[i] == SLAVE && mast[i] != 0 && mast[i] - 1 != i &&
       !paused[mast[i] - 1] && role[mast[i] - 1] == MASTER && mep[mast[i] - 1] == ep[i] &&
       (lend[i] != lend[mast[i] - 1] || lastep[i] != lastep[mast[i] - 1]) ->
         assert(ep[i] >= lastep[i]);            /* (2) ApplyFetch: r.epoch >= known */
         k = 0;
         do
         :: k < W -> lg[i * W + k] = lg[(mast[i] - 1) * W + k]; k++
         :: else -> break
         od;
         k = 0;
         lend[i] = lend[mast[i] - 1];
         lastep[i] = lastep[mast[i] - 1];
         cmt[mast[i] - 1] = lend[mast[i] - 1]
     }
  od
}

/* A client write on node i, as Replica::Put runs it: the gate (RoleState::BeginWrite /
   Writable, then AdmitWriteLocked), the append (after a possible wait for in-sync slaves, with
   no new lease check: only master_epoch_ must be unchanged), then WaitAcknowledgedLocked: once
   a slave has it, acknowledged only if master_epoch_ and the role's epoch are unchanged and
   LeaseValid(). Refusing a write when no slave is in sync is left out (it only refuses). */
proctype writer(byte i) {
end:
  do
  :: atomic {
       !paused[i] && pend[i] == 0 && wleft > 0 && WRITABLE(i) ->
         wleft--; pend[i] = 1; pep[i] = ep[i]
     }
  :: atomic {
       !paused[i] && pend[i] == 1 ->
         if
         :: role[i] == MASTER && mep[i] == pep[i] ->
            check_acked(i, pep[i]);             /* (3) a master appends after all acked writes */
            lg[i * W + lend[i]] = pep[i];
            lend[i]++;
            lastep[i] = pep[i];
            wpos[i] = lend[i];
            pend[i] = 2
         :: else -> pend[i] = 0; pep[i] = 0     /* "lost the master role" */
         fi
     }
  :: atomic {
       !paused[i] && pend[i] == 2 && (mep[i] != pep[i] || cmt[i] >= wpos[i]) ->
         if
         :: mep[i] == pep[i] && ep[i] == pep[i] && LEASE_VALID(i) ->
            ackd[wpos[i] - 1] = pep[i];       /* acknowledged to the client */
            check_later_masters(pep[i])         /* (3) */
         :: else                                /* outcome unknown to the client */
         fi;
         pend[i] = 0; pep[i] = 0; wpos[i] = 0
     }
  od
}

/* SIGSTOP and SIGCONT. */
active proctype env() {
  byte i;
end:
  do
  :: atomic { pauses_left > 0 -> select(i : 0 .. N - 1); paused[i] = 1; pauses_left--; i = 0 }
  :: atomic { paused[0] -> paused[0] = 0 }
  :: atomic { paused[1] -> paused[1] = 0 }
#if N > 2
  :: atomic { paused[2] -> paused[2] = 0 }
#endif
  od
}
