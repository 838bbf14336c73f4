// ConnectionPool: a bounded pool of connected Thrift transports to one endpoint.
//
//   ConnectionPool pool(endpoint, options);
//   StatusOr<ConnectionPool::Lease> lease = pool.Acquire(deadline);
//   auto& client = lease->connection().As<CalculatorClient>();
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
#include <typeinfo>
#include <vector>

#include <thrift/protocol/TProtocol.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/clock.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/protocol.h"
#include "fulcrum/status.h"

namespace fulcrum {

struct PoolOptions {
  Protocol protocol = Protocol::kBinary;
  int max_connections = 64;  // per endpoint; a call waits (until its deadline) beyond this
  // Idle connections kept per endpoint: the shared idle list holds at most this many at once;
  // with the per-thread slots counted too, CloseIdle (the channel runs it every 500 ms) trims
  // back to it.
  int max_idle = 16;
  Duration idle_timeout = std::chrono::seconds(30);
  Duration connect_timeout = std::chrono::milliseconds(500);
  // A connection idle for longer than this is checked (a non-blocking poll) before reuse, so
  // a call is not sent on a connection the server already closed.
  Duration recheck_after_idle = std::chrono::milliseconds(100);
  uint32_t max_frame_size = 64u << 20;
};

class ClientFramedTransport;
namespace internal {
class DeadlineWatchdog;
}

class Connection {
 public:
  Connection(std::shared_ptr<apache::thrift::transport::TSocket> socket,
             std::shared_ptr<apache::thrift::transport::TTransport> transport,
             std::shared_ptr<apache::thrift::protocol::TProtocol> protocol);
  ~Connection();

  // The Thrift client of type C on this connection, made on first use and kept with it.
  template <class C>
  C& As() {
    if (client_type_ != &typeid(C)) {
      client_ = std::make_shared<C>(protocol_);
      client_type_ = &typeid(C);
    }
    return *static_cast<C*>(client_.get());
  }

  const std::shared_ptr<apache::thrift::protocol::TProtocol>& protocol() const { return protocol_; }

  // Sets the socket's send and receive timeouts; a system call only when the value changes.
  // For direct users of the pool. A socket timeout bounds each read or write, not the call; the
  // channel bounds the whole call with BeginCall/EndCall instead.
  void SetTimeout(int ms);

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

  TimePoint last_used;

 private:
  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::shared_ptr<apache::thrift::protocol::TProtocol> protocol_;
  std::shared_ptr<void> client_;
  const std::type_info* client_type_ = nullptr;
  const ClientFramedTransport* framed_;  // transport_, when it counts replies owed
  int timeout_ms_ = -1;
  bool broken_ = false;

  // Deadline watch (deadline_watchdog.h). deadline_ is 0 between calls, the call's deadline in
  // nanoseconds on clock_ during one, kCut once the watchdog shut the socket down.
  friend class internal::DeadlineWatchdog;
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
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&& other) noexcept {
      Release();
      pool_ = other.pool_;
      conn_ = std::move(other.conn_);
      return *this;
    }
    ~Lease() { Release(); }

    Connection& connection() { return *conn_; }
    explicit operator bool() const { return conn_ != nullptr; }

   private:
    void Release();
    ConnectionPool* pool_ = nullptr;
    std::unique_ptr<Connection> conn_;
  };

  ConnectionPool(Endpoint endpoint, PoolOptions options, const Clock& clock = Clock::Real());
  ~ConnectionPool();

  // Borrows an idle connection or opens one. Waits for a free slot until `deadline` when
  // max_connections are in use. Errors: kTransport (connect failed: nothing was sent, safe to
  // retry anywhere), kDeadlineExceeded, kResourceExhausted (pool closed).
  StatusOr<Lease> Acquire(TimePoint deadline);

  // Closes connections idle for longer than idle_timeout. The channel calls it periodically.
  void CloseIdle();
  // Closes every idle connection and makes later Acquire calls fail; leased connections are
  // closed when returned. Calls in flight finish normally.
  void Shutdown();

  int open_connections() const;
  int idle_connections() const;
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  friend class Lease;
  void Return(std::unique_ptr<Connection> conn);
  StatusOr<std::unique_ptr<Connection>> Connect(TimePoint deadline);
  // Takes the connection parked in this thread's slot, if any (lock-free).
  std::unique_ptr<Connection> TakeFromSlot();
  // Parks `conn` in this thread's slot; gives it back if the slot is taken.
  std::unique_ptr<Connection> ParkInSlot(std::unique_ptr<Connection> conn);
  // Empties every slot into `out` (for CloseIdle and Shutdown).
  void DrainSlots(std::vector<std::unique_ptr<Connection>>* out);
  void CloseLocked(int n);  // accounts for n closed connections; needs mu_

  static constexpr size_t kSlots = 16;
  struct alignas(64) Slot {
    std::atomic<Connection*> conn{nullptr};
  };

  const Endpoint endpoint_;
  const PoolOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable slot_freed_;
  std::array<Slot, kSlots> slots_;
  std::atomic<bool> shutdown_{false};
  std::atomic<int> waiters_{0};  // callers blocked for a free slot: returns go to the list
  std::vector<std::unique_ptr<Connection>> idle_;  // most recently used at the back
  int open_ = 0;
};

}  // namespace fulcrum
