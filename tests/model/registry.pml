/*
 * Failover through fulcrum-registry: the master's lease and the promotion delay
 * (docs/master-slave.md, rules 1 and 2). Checked by tests/model/check.sh; see
 * docs/master-slave.md, "A model, checked".
 *
 * One tick is one heartbeat interval (--ms_heartbeat_interval_ms=100). The defaults below
 * are the registry's: --master_lease_ms=600, --promotion_delay_ms=800, and RoleState's
 * write_margin of 100 ms. A node's clock may run slow by DRIFT = 1 tick over the run. A
 * heartbeat reaches the registry in the step that sends it and the reply is delivered within
 * the tick it is sent in (MAXDELAY = 0: any order with everything else in that tick, never a
 * whole interval late). Rule 2's wait for fresh reports (WAITMAX intervals past
 * eligibility) needs a slave's heartbeat to come round within that window: the registry waits
 * one report period, 1 + 2 x (DELAY - LEASE) intervals. With the two intervals it used to wait
 * (-DWAITMAX=2), -DREQUEST_TRANSIT -DMAXDELAY=1 (request and reply each up to an interval in
 * transit) makes the checker find a lost acknowledged write (see docs/master-slave.md).
 *
 * Processes: node(i) is the server's heartbeat thread (fulcrum::Registrar sending
 * LoadReports, ServerRegistration feeding the reply to RoleState::Apply) together with the
 * registry answering it (Store::Heartbeat, NoteGroupMemberLocked, DirectivesLocked in
 * registry/server/store*.cc); sweeper() is the registry's sweep deciding promotions
 * (DecidePromotion in registry/server/groups.cc, CommitPromotion in store_groups.cc);
 * writer(i) and follower(i) (common.pml) are the kvstore's write path and replication;
 * env() pauses nodes; clock() (clock.pml) makes time pass.
 *
 * Abstracted away: the first election (rule 3; the run starts right after it, node 0 master
 * of epoch 1 with a lease from a heartbeat at time 0); registry restarts and the durable save
 * (a promotion is one atomic step; while the real save runs the old master gets no lease,
 * which only shortens it); switchovers (rule 5), drains, re-registration with a new
 * incarnation (rule 4's second half) and --accept_data_loss; priorities (all equal: the
 * lowest index wins ties, as the lowest address does); UP/DOWN (every slave counts as UP, so
 * the registry waits for a paused slave the full WAITMAX, its worst case).
 */

#ifndef MAXDELAY
#define MAXDELAY 0
#endif
#ifndef W
#define W 1
#endif
#ifndef LEASE
#define LEASE 6   /* --master_lease_ms=600 */
#endif
#ifndef DELAY
#define DELAY 8   /* --promotion_delay_ms=800; the broken variant passes -DDELAY=5 */
#endif
#ifndef WAITMAX
/* Rule 2's longest wait for fresh reports, in intervals (groups.cc: interval + 2 x (promotion
   delay - lease)); 1 when the delay is not longer than the lease (the registry refuses that). */
#define WAITMAX (DELAY > LEASE -> 1 + 2 * (DELAY - LEASE) : 1)
#endif
#ifndef MARGIN
#define MARGIN 1  /* RoleState's write_margin, 100 ms */
#endif
#include "common.pml"

/* The heartbeat of node i: the request reaches the registry in the step that sends it (see
   node() for why that is the worst case for the lease), so hb is 0 (idle) or 2 (the reply in
   transit); 1 (the request in transit) only with -DREQUEST_TRANSIT;
   hage: global ticks since the reply was sent; hloc: ticks on the node's clock since it sent
   the request (its sent_at), saturating at LEASE (a lease from that heartbeat would have run
   out). The reply carries the Directives: role, epoch, whether it carries a lease. */
byte hb[N];
bool hsent[N];        /* a heartbeat was sent in this tick (one per interval) */
byte hage[N];
byte hloc[N];
byte rrole[N];
byte rep[N];
bool rlease[N];
hidden byte ne;       /* scratch */

/* The registry's Group (registry/server/groups.h) and what it knows of each member.
   mage: ticks since master_seen, saturating at MSAT; rage[j]: ticks since Member.last_report,
   saturating at RSAT. A report is fresh (received after eligibility, master_seen + delay) when
   rage < mage - DELAY. Saturation changes that comparison only for a report RSAT or more ticks
   old, i.e. from a paused node (a running one reports every tick or two), and only when the
   registry has been unable to promote for MSAT - DELAY ticks (no candidate). */
#define MSAT (DELAY + 3)
#define RSAT 3
byte gep = 1;         /* epoch */
byte gm = 0;          /* master's index */
byte mage = 0;        /* since master_seen */
byte floor = 0;       /* commit_floor */
byte rage[N];         /* since Member.last_report */
byte rpos[N];         /* Member.position */
bool swept;           /* the sweep (every few ms) ran in this tick */

/* The clock waits for: every running node to have sent its heartbeat of this interval,
   every reply to reach a running node within MAXDELAY, and the registry's sweep once the
   master may be lost. */
#define DUE(i) ((hb[i] == 0 && !hsent[i] && !paused[i]) || \
                (hb[i] == 1 && hage[i] >= MAXDELAY) || \
                (hb[i] == 2 && !paused[i] && hage[i] >= MAXDELAY))
#if N > 2
#define OBLIGATIONS_MET ((swept || mage < DELAY) && !DUE(0) && !DUE(1) && !DUE(2))
#else
#define OBLIGATIONS_MET ((swept || mage < DELAY) && !DUE(0) && !DUE(1))
#endif

inline tick_plane() {
  swept = 0;
  if :: mage < MSAT -> mage++ :: else fi;
  k2 = 0;
  do
  :: k2 < N ->
     hsent[k2] = 0;
     if :: rage[k2] < RSAT -> rage[k2]++ :: else fi;
     if :: hb[k2] != 0 && hage[k2] < MAXDELAY -> hage[k2]++ :: else fi;
     k2++
  :: else -> break
  od;
  k2 = 0
}

inline tick_node(i) {
  if :: lrem[i] > 0 -> lrem[i]-- :: else fi;
  if :: hb[i] != 0 && hloc[i] < LEASE -> hloc[i]++ :: else fi
}

/* Store::Heartbeat, NoteGroupMemberLocked and DirectivesLocked (registry/server/store*.cc):
   hearing from the master renews it (master_seen) and raises the commit floor; the reply
   tells the node its role, the epoch and, to the master, the lease. */
inline registry_hears(i, pos, com) {
  rage[i] = 0;
  rpos[i] = pos;
  if
  :: gm == i ->
     mage = 0;
     if :: com > floor -> floor = com :: else fi;
     rrole[i] = MASTER; rlease[i] = 1
  :: else -> rrole[i] = SLAVE; rlease[i] = 0
  fi;
  rep[i] = gep;
  hb[i] = 2; hage[i] = 0
}

#ifdef REQUEST_TRANSIT
/* -DREQUEST_TRANSIT: the request too spends up to MAXDELAY in transit, carrying the
   LoadReport read when it was sent. */
byte hpos[N];
byte hcom[N];
proctype link(byte i) {
end:
  do
  :: atomic { hb[i] == 1 -> registry_hears(i, hpos[i], hcom[i]); hpos[i] = 0; hcom[i] = 0 }
  od
}
#endif

/* The node's heartbeat thread, the registry answering it, and RoleState::Apply.
   Sending and the registry's receipt are one step: sent_at is taken before sending (the node's
   clock, hloc = 0) and the registry hears from the master (master_seen) at the same instant,
   the worst case for rule 1 (a later receipt only delays promotion); the LoadReport
   (ServerRegistration::Load) is read at that instant too. */
proctype node(byte i) {
end:
  do
  :: atomic {
       !paused[i] && hb[i] == 0 && !hsent[i] ->
         hsent[i] = 1; hage[i] = 0; hloc[i] = 0;
         /* commit_position: EncodePosition(epoch at the commit position, position) */
         if
         :: role[i] == MASTER && cmt[i] > 0 -> ne = lg[i * W + cmt[i] - 1] * (W + 1) + cmt[i]
         :: else -> ne = 0
         fi;
#ifdef REQUEST_TRANSIT
         hb[i] = 1; hpos[i] = POS(i); hcom[i] = ne
#else
         registry_hears(i, POS(i), ne)
#endif
         ; ne = 0
     }
  :: atomic {
       !paused[i] && hb[i] == 2 ->
         if
         :: rep[i] < ep[i]      /* an older epoch than one already seen: ignored */
         :: else ->
            /* The lease first (sent_at + master_lease): a reply that demotes stops writes
               before anything else sees it. */
            if
            :: rrole[i] == MASTER && rlease[i] -> lrem[i] = LEASE - hloc[i]
            :: else -> lrem[i] = 0
            fi;
            if
            :: rrole[i] != role[i] || rep[i] != ep[i] || mast[i] != gm + 1 ->
               become(i, rrole[i], rep[i], gm + 1)
            :: else
            fi;
            exclusive(i)            /* (1) */
         fi;
         hb[i] = 0; hage[i] = 0; hloc[i] = 0; rrole[i] = 0; rep[i] = 0; rlease[i] = 0
     }
  od
}

/* Rule 2 (DecidePromotion): eligible at master_seen + promotion delay; candidates are the
   slaves; fresh ones reported after eligibility; wait until all are fresh or WAITMAX
   intervals past eligibility; the highest position wins (then the lowest index), never one below the
   commit floor. The promotion (epoch + 1, saved, then visible) is one step. */
active proctype sweeper() {
  byte j, best, nc, nf;
end:
  do
  :: atomic {
       mage >= DELAY ->
         swept = 1;
         if
         :: true ->
            nc = 0; nf = 0; best = N; j = 0;
            do
            :: j < N ->
               if
               :: j != gm ->
                  nc++;
                  if
                  :: rage[j] + DELAY < mage ->
                     nf++;
                     if
                     :: best == N || rpos[j] > rpos[best] -> best = j
                     :: else
                     fi
                  :: else
                  fi
               :: else
               fi;
               j++
            :: else -> break
            od;
            if
            :: nf < nc && mage < DELAY + WAITMAX ->   /* waiting for fresh reports */
            :: else ->
               if
               :: best < N && rpos[best] >= floor ->
                  assert(gep < 255);
                  gep++;                  /* (2) the registry's epoch only goes up */
                  gm = best;
                  mage = 0
               :: else                    /* no candidate: stalled */
               fi
            fi;
            j = 0; best = 0; nc = 0; nf = 0
         :: else
         fi
     }
  od
}

init {
  byte i;
  /* Right after rule 3: node 0 is master of epoch 1 with a lease from a heartbeat sent at 0;
     the others are its slaves. */
  atomic {
    role[0] = MASTER; ep[0] = 1; mast[0] = 1; mep[0] = 1; lrem[0] = LEASE;
    role[1] = SLAVE; ep[1] = 1; mast[1] = 1;
#if N > 2
    role[2] = SLAVE; ep[2] = 1; mast[2] = 1;
#endif
    i = 0;
    do
    :: i < N ->
       run node(i); run writer(i); run follower(i);
#ifdef REQUEST_TRANSIT
       run link(i);
#endif
       i++
    :: else -> break
    od;
    i = 0
  }
}

#include "clock.pml"
