/*
 * Failover through fulcrum-registry: the master's lease and the promotion delay
 * (docs/master-slave.md, rules 1 and 2). Checked by tests/model/check.sh; see
 * docs/master-slave.md, "A model, checked".
 *
 * One tick is one heartbeat interval (--ms_heartbeat_interval_ms=100). The defaults below
 * are the registry's: --master_lease_ms=600, --promotion_delay_ms=800, and RoleState's
 * write_margin of 100 ms. The timing assumptions of rule 1 are the model's: a heartbeat spends
 * at most MAXDELAY = 1 tick in transit and a clock runs slow by at most DRIFT = 1 tick over the
 * run, together the 200 ms (25%) that promotion delay - lease leaves.
 *
 * Processes: node(i) is the server's heartbeat thread (fulcrum::Registrar sending
 * LoadReports, ServerRegistration feeding the reply to RoleState::Apply); link(i) is the
 * registry answering node i's heartbeats (Store::Heartbeat, NoteGroupMemberLocked,
 * DirectivesLocked in registry/server/store*.cc); sweeper() is the registry's sweep deciding
 * promotions (DecidePromotion in registry/server/groups.cc, CommitPromotion); writer(i) and
 * follower(i) (common.pml) are the kvstore's write path and replication.
 *
 * Abstracted away: the first election (rule 3; the run starts right after it, node 0 master
 * of epoch 1 with a lease from a heartbeat at time 0); registry restarts and the durable save
 * (a promotion is one atomic step; while the real save runs the old master gets no lease,
 * which only shortens it); switchovers (rule 5), drains, re-registration with a new
 * incarnation (rule 4's second half) and --accept_data_loss; priorities (all equal: the
 * lowest index wins ties, as the lowest address does); UP/DOWN (every slave counts as UP, so
 * the registry waits for a paused slave the full two intervals, its worst case).
 */

#ifndef LEASE
#define LEASE 6   /* --master_lease_ms=600 */
#endif
#ifndef DELAY
#define DELAY 8   /* --promotion_delay_ms=800; the broken variant passes -DDELAY=5 */
#endif
#ifndef MARGIN
#define MARGIN 1  /* RoleState's write_margin, 100 ms */
#endif
#ifndef MAXT
#define MAXT 14   /* ticks in a run */
#endif

#include "common.pml"

/* The heartbeat of node i in flight: hb 0 idle, 1 request in transit (sent at hsg on the
   global clock, hsl on the node's), 2 reply in transit (sent at hsg). The request carries the
   LoadReport (replication_position, commit_position), the reply the Directives (role, epoch,
   master, whether it carries a lease). */
byte hb[N];
byte hsg[N];
byte hsl[N];
byte hpos[N];
byte hcom[N];
byte rrole[N];
byte rep[N];
bool rlease[N];

/* The registry's Group (registry/server/groups.h) and what it knows of each member. */
byte gep = 1;         /* epoch */
byte gm = 0;          /* master's index */
byte mseen = 0;       /* master_seen: when it last heard from the master */
byte floor = 0;       /* commit_floor */
byte last_rep[N];     /* Member.last_report */
byte rpos[N];         /* Member.position */

/* The clock waits for: every running node to have a heartbeat in flight (one per interval),
   every request to reach the registry and every reply to reach a running node within
   MAXDELAY. */
#define DUE(i) ((hb[i] == 0 && !paused[i]) || \
                (hb[i] == 1 && hsg[i] + MAXDELAY <= now) || \
                (hb[i] == 2 && !paused[i] && hsg[i] + MAXDELAY <= now))
#if N > 2
#define OBLIGATIONS_MET (!DUE(0) && !DUE(1) && !DUE(2))
#else
#define OBLIGATIONS_MET (!DUE(0) && !DUE(1))
#endif

/* The node's heartbeat thread and RoleState::Apply. sent_at is taken before sending
   (conservative); the LoadReport is read then too (ServerRegistration::Load). */
proctype node(byte i) {
end:
  do
  :: atomic {
       !paused[i] && hb[i] == 0 ->
         hb[i] = 1; hsg[i] = now; hsl[i] = LC(i);
         hpos[i] = POS(i);
         /* commit_position: EncodePosition(epoch at the commit position, commit position) */
         if
         :: role[i] == MASTER && cmt[i] > 0 -> hcom[i] = lg[i * W + cmt[i] - 1] * (W + 1) + cmt[i]
         :: else -> hcom[i] = 0
         fi
     }
  :: atomic {
       !paused[i] && hb[i] == 2 ->
         if
         :: rep[i] < ep[i]      /* an older epoch than one already seen: ignored */
         :: else ->
            /* The lease first: a reply that demotes stops writes before anything else. */
            if
            :: rrole[i] == MASTER && rlease[i] -> lease_end[i] = hsl[i] + LEASE
            :: else -> lease_end[i] = 0
            fi;
            if
            :: rrole[i] != role[i] || rep[i] != ep[i] || mast[i] != gm + 1 ->
               become(i, rrole[i], rep[i], gm + 1)
            :: else
            fi;
            exclusive(i)            /* (1) */
         fi;
         hb[i] = 0; hsg[i] = 0; hsl[i] = 0; rrole[i] = 0; rep[i] = 0; rlease[i] = 0
     }
  od
}

/* The registry receiving node i's heartbeat and answering it (Store::Heartbeat): hearing from
   the master renews it (master_seen = now) and raises the commit floor; the reply tells the
   node its role, the epoch and, to the master, the lease. */
proctype link(byte i) {
end:
  do
  :: atomic {
       hb[i] == 1 ->
         last_rep[i] = now;
         rpos[i] = hpos[i];
         if
         :: gm == i ->
            mseen = now;
            if
            :: hcom[i] > floor -> floor = hcom[i]
            :: else
            fi;
            rrole[i] = MASTER; rlease[i] = 1
         :: else -> rrole[i] = SLAVE; rlease[i] = 0
         fi;
         rep[i] = gep;
         hb[i] = 2; hsg[i] = now; hpos[i] = 0; hcom[i] = 0
     }
  od
}

/* Rule 2 (DecidePromotion): eligible at master_seen + promotion delay; candidates are the
   slaves; fresh ones reported after eligibility; wait until all are fresh or two intervals
   past eligibility; the highest position wins (then the lowest index), never one below the
   commit floor. The promotion (epoch + 1, saved, then visible) is one step. */
active proctype sweeper() {
  byte j, best, nc, nf;
end:
  do
  :: atomic {
       now >= mseen + DELAY ->
         nc = 0; nf = 0; best = N; j = 0;
         do
         :: j < N ->
            if
            :: j != gm ->
               nc++;
               if
               :: last_rep[j] > mseen + DELAY ->
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
         :: nf < nc && now < mseen + DELAY + 2 ->   /* waiting for fresh reports */
         :: else ->
            if
            :: best < N && rpos[best] >= floor ->
               assert(gep < 255);
               gep++;                  /* (2) the registry's epoch only goes up */
               gm = best;
               mseen = now
            :: else                    /* no candidate: stalled */
            fi
         fi;
         j = 0; best = 0; nc = 0; nf = 0
     }
  od
}

init {
  byte i;
  /* Right after rule 3: node 0 is master of epoch 1 with a lease from a heartbeat sent at 0;
     the others are its slaves. */
  atomic {
    role[0] = MASTER; ep[0] = 1; mast[0] = 1; mep[0] = 1; lease_end[0] = LEASE;
    role[1] = SLAVE; ep[1] = 1; mast[1] = 1;
#if N > 2
    role[2] = SLAVE; ep[2] = 1; mast[2] = 1;
#endif
    i = 0;
    do
    :: i < N -> run node(i); run link(i); run writer(i); run follower(i); i++
    :: else -> break
    od
  }
}

#include "clock.pml"
