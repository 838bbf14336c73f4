#include "call/pooled_attempt.h"

#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <ctime>
#include <utility>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocolException.h>
#include <thrift/transport/TTransportException.h>

#include "fulcrum/role.h"
#include "transport/connection_pool.h"

namespace fulcrum::internal {

using apache::thrift::TApplicationException;
using apache::thrift::TException;
using apache::thrift::protocol::TProtocolException;
using apache::thrift::transport::TTransportException;

namespace {

// Thrown from MarkSent to end the attempt that lost a race. Not a TException, so attempt code
// that catches Thrift's exceptions lets it through.
struct RaceLost {};

// Waits until one of `fds` is readable (data, EOF or an error) or `until` passes. Returns the
// first readable one's index, or -1. Negative fds are skipped (poll ignores them).
template <size_t N>
int WaitReadable(const std::array<int, N>& fds, TimePoint until, const Clock& clock) {
  std::array<pollfd, N> pfds{};
  for (size_t i = 0; i < N; ++i) {
    pfds[i].fd = fds[i];
    pfds[i].events = POLLIN | POLLRDHUP;
  }
  for (;;) {
    const int64_t left_ns = std::max<int64_t>(0, (until - clock.Now()).count());
    timespec timeout{static_cast<time_t>(left_ns / 1'000'000'000),
                     static_cast<long>(left_ns % 1'000'000'000)};
    const int rc = ::ppoll(pfds.data(), N, &timeout, nullptr);
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return -1;  // the time is up (or poll failed: the reads will say why)
    for (size_t i = 0; i < N; ++i) {
      if (pfds[i].revents != 0) return static_cast<int>(i);
    }
  }
}

// True when bytes are waiting on `fd` (a reply has begun), false on EOF or an error.
bool HasData(int fd) {
  char c;
  ssize_t n;
  do {
    n = ::recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n > 0;
}

}  // namespace

// One attempt racing its hedge. OnSent is the first attempt's MarkSent; HedgeSide's is the
// hedge's, which runs nested inside it.
class PooledAttempt::Race final : public SentHook {
 public:
  Race(const PooledAttempt& runner, HedgeOffer& offer, int first_fd, TimePoint deadline)
      : runner_(runner), offer_(offer), first_fd_(first_fd), deadline_(deadline) {}

  void OnSent() override;

  HedgeOutcome hedge;
  AttemptOutcome won;  // the hedge's outcome, when hedge.won

 private:
  class HedgeSide final : public SentHook {
   public:
    explicit HedgeSide(Race& race) : race_(race) {}
    void OnSent() override { race_.OnHedgeSent(); }

   private:
    Race& race_;
  };
  void OnHedgeSent();

  const PooledAttempt& runner_;
  HedgeOffer& offer_;
  const int first_fd_;
  const TimePoint deadline_;
  int hedge_fd_ = -1;
};

void PooledAttempt::Race::OnSent() {
  const Clock& clock = runner_.clock_;
  if (hedge.backend != nullptr) return;  // MarkSent called twice
  if (WaitReadable(std::array<int, 1>{first_fd_}, offer_.at(), clock) >= 0) return;
  const Backend* backend = offer_.Take();
  if (backend == nullptr) return;  // nowhere else to go, or no budget: wait for this one
  hedge.backend = backend;
  hedge.start = clock.Now();
  StatusOr<ConnectionPool::Lease> lease = backend->pool->Acquire(deadline_);
  if (!lease.ok()) {
    hedge.end = clock.Now();
    hedge.code = lease.status().code();
    hedge.detail = lease.status().message();
    return;
  }
  hedge.connected = true;
  hedge_fd_ = lease->connection().fd();
  HedgeSide side(*this);
  AttemptOutcome out;
  const bool finished = runner_.RunOn(lease->connection(), deadline_, &side, out);
  hedge.end = clock.Now();
  if (!finished) {
    hedge.lost = true;  // the first endpoint's reply came first: read it
    return;
  }
  if (out.nested || out.code == StatusCode::kOk || out.code == StatusCode::kApplication) {
    // The hedge has the answer: end the first attempt before it reads anything.
    hedge.won = true;
    won = std::move(out);
    throw RaceLost{};
  }
  // The hedge failed on its own (a transport or protocol error): wait for the first endpoint.
  hedge.code = out.code;
  hedge.detail = std::move(out.detail);
}

void PooledAttempt::Race::OnHedgeSent() {
  std::array<int, 2> fds{first_fd_, hedge_fd_};
  for (;;) {
    const int ready = WaitReadable(fds, deadline_, runner_.clock_);
    // The hedge's reply (or its connection's end, which its read reports), or the deadline
    // (the watchdog cuts both connections; the hedge's read reports it).
    if (ready != 0) return;
    if (HasData(first_fd_)) throw RaceLost{};  // the first endpoint's reply came first
    fds[0] = -1;  // the first connection closed: the hedge is all there is
  }
}

AttemptOutcome PooledAttempt::Run(const Backend& backend, TimePoint deadline) {
  return Attempt(backend, deadline, nullptr);
}

AttemptOutcome PooledAttempt::RunHedged(const Backend& backend, TimePoint deadline,
                                        HedgeOffer& offer) {
  return Attempt(backend, deadline, &offer);
}

AttemptOutcome PooledAttempt::Attempt(const Backend& backend, TimePoint deadline,
                                      HedgeOffer* offer) {
  AttemptOutcome out;
  StatusOr<ConnectionPool::Lease> lease = backend.pool->Acquire(deadline);
  if (!lease.ok()) {
    out.code = lease.status().code();
    out.detail = lease.status().message();
    return out;
  }
  out.connected = true;
  if (offer == nullptr) {
    RunOn(lease->connection(), deadline, nullptr, out);
    return out;
  }
  Race race(*this, *offer, lease->connection().fd(), deadline);
  if (!RunOn(lease->connection(), deadline, &race, out)) {
    out = std::move(race.won);  // the hedge answered first
    out.connected = true;
  }
  out.hedge = std::move(race.hedge);
  return out;
}

bool PooledAttempt::RunOn(PooledConnection& conn, TimePoint deadline, SentHook* hook,
                          AttemptOutcome& out) const {
  // The deadline is enforced by the watchdog thread, not a socket timeout (see
  // deadline_watchdog.h for why).
  conn.BeginCall(deadline, clock_);
  CallPhase phase(hook);
  try {
    fn_(closure_, conn, phase);
  } catch (const RaceLost&) {
    // The other attempt of the race answered first. This one's reply is owed on the
    // connection: the pool drops it once it has come before the connection serves again, or
    // closes the connection.
    conn.AllowDrain();
    conn.EndCall();
    out.sent = true;
    return false;
  } catch (const CallError&) {
    // A Fulcrum call made inside this attempt failed. This attempt's own request may be on
    // the wire with its reply unread, so the connection is not reused (the pool would also
    // refuse it: it counts replies owed).
    conn.MarkBroken();
    conn.EndCall();
    out.nested = std::current_exception();
    return true;
  } catch (...) {
    if (SortAttemptException(out, master_slave_)) conn.MarkBroken();
  }
  if (conn.EndCall() && (out.code == StatusCode::kTransport || out.code == StatusCode::kProtocol)) {
    // The watchdog shut the socket down at the deadline: that is why the read failed.
    out.code = StatusCode::kDeadlineExceeded;
    out.detail = "deadline exceeded during the call (connection cut)";
  }
  out.sent = phase.sent();
  return true;
}

}  // namespace fulcrum::internal
