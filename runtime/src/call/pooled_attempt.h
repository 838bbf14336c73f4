// PooledAttempt: the channel's AttemptRunner. One attempt on a pooled Thrift connection to one
// endpoint, its exceptions sorted into an AttemptOutcome; with a hedge offered, a race of two.
//
// Hedging without a second thread: the generated attempt is `send_x(...); phase.MarkSent();
// return recv_x();`. With a hedge offered, MarkSent waits (poll) for the first connection to
// become readable until the hedge time. If no reply came, it takes the offered endpoint and
// runs the same attempt there, nested; the hedge's own MarkSent then waits on both connections.
// Whichever reply comes first is read by its attempt; the other attempt is ended by an
// exception thrown from its MarkSent, before its recv. Its connection goes back to the pool
// with the reply owed: the pool drops that reply once it has fully come and only then reuses
// the connection, or closes it (connection_pool.h), so a late reply is never read by a later
// call and a lost race costs no reconnect. A connection that closes (EOF, reset, the deadline
// cut) drops out of the race and the other one is waited for.
#pragma once

#include "call/attempt_loop.h"
#include "fulcrum/channel.h"

namespace fulcrum::internal {

class PooledConnection;

class PooledAttempt final : public AttemptRunner {
 public:
  using Fn = void (*)(void* closure, Connection& conn, CallPhase& phase);
  PooledAttempt(Fn fn, void* closure, const Clock& clock, bool master_slave)
      : fn_(fn), closure_(closure), clock_(clock), master_slave_(master_slave) {}

  AttemptOutcome Run(const Backend& backend, TimePoint deadline) override;
  AttemptOutcome RunHedged(const Backend& backend, TimePoint deadline, HedgeOffer& offer) override;

 private:
  class Race;
  // Leases a connection and runs the attempt on it, racing a hedge when `offer` is set.
  AttemptOutcome Attempt(const Backend& backend, TimePoint deadline, HedgeOffer* offer);
  // Runs the attempt on a leased connection with `hook` told when its request left. Sets
  // everything in `out` but `connected` and `hedge`. Returns false when the hook ended the
  // attempt (the other attempt of a race answered first); the connection is then broken.
  bool RunOn(PooledConnection& conn, TimePoint deadline, SentHook* hook, AttemptOutcome& out) const;

  const Fn fn_;
  void* const closure_;
  const Clock& clock_;
  const bool master_slave_;
};

}  // namespace fulcrum::internal
