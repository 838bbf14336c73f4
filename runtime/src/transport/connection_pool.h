// ConnectionPool: a bounded pool of connected Thrift transports to one endpoint.
//
//   ConnectionPool pool(endpoint, options);
//   StatusOr<ConnectionPool::Lease> lease = pool.Acquire(deadline);
//   auto& client = lease->connection().As<CalculatorClient>();   // Connection (connection.h)
//   client.add(1, 2);
//   lease->connection().MarkBroken();   // after a transport error: closed, never reused
//
// A call borrows a connection and returns it when the Lease goes away. Thrift's sync clients
// are not thread-safe, so a connection serves one call at a time. At most max_connections are
// open; idle ones beyond max_idle, or idle for longer than idle_timeout, are closed.
//
// The hot path takes no lock: each calling thread has a home slot (an atomic pointer) where it
// parks its connection between calls and finds it again, like a raw client that owns its
// connection (when a thread exits, its slot and the connection parked there pass to the next
// new thread). The mutex-guarded idle list is the overflow and the path for waiters. A lock
// here showed up end to end: with more busy threads than cores, a thread preempted while
// holding it stalls every other caller for a time slice.
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/clock.h"
#include "fulcrum/connection.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/protocol.h"
#include "fulcrum/status.h"

namespace fulcrum {
class ClientFramedTransport;
}  // namespace fulcrum

namespace fulcrum::internal {

class DeadlineWatchdog;
class Pipeline;

// A pooled connection: the public Connection plus what the pool and the channel need.
class PooledConnection final : public Connection {
 public:
  PooledConnection(std::shared_ptr<apache::thrift::transport::TSocket> socket,
                   std::shared_ptr<apache::thrift::transport::TTransport> transport,
                   std::shared_ptr<apache::thrift::protocol::TProtocol> protocol);
  ~PooledConnection();

  // The deadline of the call about to run on this connection, on `clock`. A process-wide
  // watchdog thread shuts the socket down once the deadline has passed (at most a few
  // milliseconds late), which makes the blocked read or write fail. One atomic store.
  void BeginCall(TimePoint deadline, const Clock& clock);
  // Ends the call begun by BeginCall. Returns true when the watchdog cut it: the connection is
  // then marked broken (and whatever the call threw was caused by the cut).
  bool EndCall();
  void MarkBroken() { broken_ = true; }
  bool broken() const { return broken_; }
  // True when a two-way request was sent on this connection and its reply not read to its end
  // (an attempt left between the two). The pool closes such a connection instead of reusing it.
  bool AwaitingReply() const;
  // True when the peer has closed or sent unsolicited bytes (checked without blocking).
  bool PeerClosed() const;
  // The socket, for waiting on a reply (hedging polls it); owned by the connection.
  int fd() const { return fd_; }
  // The call on this connection was abandoned after its request left (a hedge race's loser):
  // instead of closing it, the pool may keep it aside until its one reply owed has arrived,
  // drop that reply, and reuse the connection (TryDrain).
  void AllowDrain() { drain_allowed_ = true; }
  bool Drainable() const;
  enum class Drain { kDone, kWait, kFailed };
  // Without blocking: reads and drops the reply owed once all of it has arrived (kDone: the
  // connection is clean again); kWait: not all there yet; kFailed: closed, junk, or too big.
  Drain TryDrain();

  // When the connection last went back to the pool (or was opened).
  TimePoint last_used() const { return last_used_; }
  void set_last_used(TimePoint t) { last_used_ = t; }

 private:
  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  ClientFramedTransport* framed_;  // transport_, when it counts replies owed
  bool broken_ = false;
  bool drain_allowed_ = false;
  TimePoint last_used_{};

  // Deadline watch (deadline_watchdog.h). deadline_ is 0 between calls, the call's deadline in
  // nanoseconds on clock_ during one, kCut once the watchdog shut the socket down.
  friend class DeadlineWatchdog;
  class Pipeline;
  static constexpr int64_t kCut = -1;
  const int fd_;
  std::atomic<int64_t> deadline_{0};
  const Clock* clock_ = nullptr;
  int watch_index_ = -1;  // position in the watchdog's list; -1: not watched (guarded by its lock)
};

class ConnectionPool {
 public:
  // Returns the connection to its pool on destruction (closed instead if broken).
  class Lease {
   public:
    Lease() = default;
    Lease(ConnectionPool* pool, std::unique_ptr<PooledConnection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      Release();
      pool_ = other.pool_;
      conn_ = std::move(other.conn_);
      return *this;
    }
    ~Lease() { Release(); }

    PooledConnection& connection() { return *conn_; }
    explicit operator bool() const { return conn_ != nullptr; }

   private:
    void Release();
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<PooledConnection> conn_;
  };

  ConnectionPool(Endpoint endpoint, PoolOptions options, const Clock& clock = Clock::Real());
  ~ConnectionPool();

  // Borrows an idle connection or opens one. Waits for a free slot until `deadline` when
  // max_connections are in use. Errors: kTransport (connect failed: nothing was sent, safe to
  // retry anywhere), kDeadlineExceeded, kResourceExhausted (pool closed).
  StatusOr<Lease> Acquire(TimePoint deadline);

  // Closes connections idle for longer than idle_timeout, and draining ones whose reply has
  // not come within idle_timeout; reuses drained ones. The channel calls it periodically.
  void CloseIdle();
  // Closes every idle connection and makes later Acquire calls fail; leased connections are
  // closed when returned. Calls in flight finish normally.
  void Shutdown();

  int open_connections() const;
  int idle_connections() const;
  int draining_connections() const;
  // The endpoint's pipelined connections (asynchronous calls), made on first use.
  Pipeline& pipeline();
  int pipelined_connections() const;
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  friend class Lease;
  void Return(std::unique_ptr<PooledConnection> conn);
  StatusOr<std::unique_ptr<PooledConnection>> Connect(TimePoint deadline);
  // Takes the connection parked in this thread's slot, if any (lock-free).
  std::unique_ptr<PooledConnection> TakeFromSlot();
  // Parks `conn` in this thread's slot; gives it back if the slot is taken.
  std::unique_ptr<PooledConnection> ParkInSlot(std::unique_ptr<PooledConnection> conn);
  // Empties every slot into `out` (for CloseIdle and Shutdown).
  void DrainSlots(std::vector<std::unique_ptr<PooledConnection>>* out);
  void CloseLocked(int n);  // accounts for n closed connections; needs mu_
  // A draining connection whose reply has been dropped, if any; closes the failed ones.
  // Needs mu_.
  std::unique_ptr<PooledConnection> TakeDrainedLocked();

  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<PooledConnection*> conn{nullptr};
  };

  const Endpoint endpoint_;
  const PoolOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable slot_freed_;
  std::array<Slot, kSlots> slots_;
  std::atomic<bool> shutdown_{false};
  std::atomic<int> waiters_{0};  // callers blocked for a free slot: returns go to the list
  std::vector<std::unique_ptr<PooledConnection>> idle_;  // most recently used at the back
  // Abandoned with a reply owed, kept until it arrives (at most max_idle; counted in open_).
  std::vector<std::unique_ptr<PooledConnection>> draining_;
  int open_ = 0;
  std::once_flag pipeline_once_;
  std::unique_ptr<Pipeline> pipeline_;  // set once, under pipeline_once_
  std::atomic<bool> has_pipeline_{false};
};

}  // namespace fulcrum::internal
