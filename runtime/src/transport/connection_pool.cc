#include "transport/connection_pool.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TTransportException.h>

#include "fulcrum/framed_transport.h"
#include "fulcrum/thread_index.h"
#include "thrift_logging.h"
#include "transport/deadline_watchdog.h"
#include "transport/pipeline.h"

namespace fulcrum::internal {

using apache::thrift::protocol::TBinaryProtocolT;
using apache::thrift::protocol::TCompactProtocolT;
using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TBufferBase;
using apache::thrift::transport::TSocket;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;

namespace {

// How often a caller waiting for a connection looks at the draining ones.
constexpr Duration kDrainRecheck = std::chrono::milliseconds(5);

// Strict reads and a string limit of one frame: a garbled reply then fails at once instead of
// making the client allocate whatever length the junk claims. Specialising on TBufferBase lets
// the protocol use the framed buffer's inline fast path.
std::shared_ptr<TProtocol> MakeClientProtocol(Protocol p, std::shared_ptr<FramedTransport> t,
                                              uint32_t max_frame_size) {
  const auto limit = static_cast<int32_t>(std::min<uint32_t>(max_frame_size, INT32_MAX));
  if (p == Protocol::kCompact) {
    return std::make_shared<TCompactProtocolT<TBufferBase>>(std::move(t), limit, 0);
  }
  return std::make_shared<TBinaryProtocolT<TBufferBase>>(std::move(t), limit, 0,
                                                         /*strict_read=*/true,
                                                         /*strict_write=*/true);
}

int ClampMillis(Duration d) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::clamp<int64_t>(ms, 1, INT32_MAX));
}

}  // namespace

PooledConnection::PooledConnection(std::shared_ptr<TSocket> socket,
                                   std::shared_ptr<TTransport> transport,
                                   std::shared_ptr<TProtocol> protocol)
    : Connection(std::move(protocol)),
      socket_(std::move(socket)),
      transport_(std::move(transport)),
      framed_(dynamic_cast<ClientFramedTransport*>(transport_.get())),
      fd_(socket_->getSocketFD()) {}

bool PooledConnection::AwaitingReply() const {
  return framed_ != nullptr && framed_->awaiting_replies() > 0;
}

bool PooledConnection::Drainable() const {
  return drain_allowed_ && !broken_ && framed_ != nullptr && framed_->awaiting_replies() == 1;
}

PooledConnection::Drain PooledConnection::TryDrain() {
  // A framed reply: a 4-byte big-endian length, then that many bytes.
  uint8_t header[4];
  ssize_t n;
  do {
    n = ::recv(fd_, header, sizeof(header), MSG_PEEK | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n == 0) return Drain::kFailed;  // the server closed the connection
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? Drain::kWait : Drain::kFailed;
  if (n < static_cast<ssize_t>(sizeof(header))) return Drain::kWait;
  const uint32_t length = (uint32_t{header[0]} << 24) | (uint32_t{header[1]} << 16) |
                          (uint32_t{header[2]} << 8) | uint32_t{header[3]};
  if (length > framed_->getMaxFrameSize()) return Drain::kFailed;
  int available = 0;
  if (::ioctl(fd_, FIONREAD, &available) != 0) return Drain::kFailed;
  const size_t frame = sizeof(header) + length;
  if (static_cast<size_t>(available) < frame) return Drain::kWait;
  // Nothing but the one reply may be there: more is junk the next call would read.
  if (static_cast<size_t>(available) > frame) return Drain::kFailed;
  char sink[4096];
  for (size_t left = frame; left > 0;) {
    n = ::recv(fd_, sink, std::min(left, sizeof(sink)), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Drain::kFailed;
    left -= static_cast<size_t>(n);
  }
  framed_->ReplyDrained();
  drain_allowed_ = false;
  return Drain::kDone;
}

PooledConnection::~PooledConnection() {
  // Before the socket closes: the watchdog must never shut down a descriptor number that a
  // new socket may already reuse.
  if (clock_ != nullptr) DeadlineWatchdog::Instance().Remove(this);
  DropClient();
  // Close the socket, not the framed transport: its close() would first flush whatever a
  // failed call left in the write buffer.
  try {
    socket_->close();
  } catch (const TTransportException& e) {
    LOG(WARNING) << "closing connection: " << e.what();
  }
}

void PooledConnection::BeginCall(TimePoint deadline, const Clock& clock) {
  auto& watchdog = DeadlineWatchdog::Instance();
  if (clock_ == nullptr) {
    clock_ = &clock;
    watchdog.Add(this);
  }
  // seq_cst: pairs with the watchdog's sleeping flag (see DeadlineWatchdog::Run).
  deadline_.store(std::max<int64_t>(ToNanos(deadline), 1), std::memory_order_seq_cst);
  watchdog.OnCallStart();
}

bool PooledConnection::EndCall() {
  if (deadline_.exchange(0, std::memory_order_acq_rel) != kCut) return false;
  broken_ = true;
  return true;
}

bool PooledConnection::PeerClosed() const {
  if (!socket_->isOpen()) return true;
  pollfd pfd{};
  pfd.fd = socket_->getSocketFD();
  pfd.events = POLLIN | POLLRDHUP;
  int rc;
  do {
    rc = ::poll(&pfd, 1, 0);
  } while (rc < 0 && errno == EINTR);
  // Between calls the server sends nothing: anything readable is a close (EOF), a reset, or
  // junk, and the connection is useless in every case.
  return rc != 0;
}

void ConnectionPool::Lease::Release() {
  if (conn_ == nullptr) return;
  pool_->Return(std::move(conn_));
  pool_ = nullptr;
}

ConnectionPool::ConnectionPool(Endpoint endpoint, PoolOptions options, const Clock& clock)
    : endpoint_(std::move(endpoint)), options_(std::move(options)), clock_(clock) {
  internal::RouteThriftOutputToGlog();
  // Returning a connection must not allocate: idle_ never holds more than this.
  idle_.reserve(
      static_cast<size_t>(std::max(0, std::min(options_.max_idle, options_.max_connections))));
  draining_.reserve(idle_.capacity());
}

ConnectionPool::~ConnectionPool() {
  std::vector<std::unique_ptr<PooledConnection>> parked;
  DrainSlots(&parked);
  std::lock_guard<std::mutex> lock(mu_);
  const int leased = open_ - static_cast<int>(idle_.size() + draining_.size() + parked.size());
  LOG_IF(ERROR, leased > 0) << "connection pool for " << endpoint_.Address() << " destroyed with "
                            << leased << " connection(s) still leased";
}

namespace {

// A thread's home slot in every pool is its index (thread_index.h) mod kSlots: any kSlots
// threads alive at once have distinct slots, however many threads came and went before.
// Null for a thread that is exiting: it parks nothing.
template <class Slots>
auto* HomeSlot(Slots& slots) {
  const size_t index = internal::ThisThreadIndex();
  return index == internal::kNoThreadIndex ? nullptr : &slots[index % slots.size()];
}

}  // namespace

std::unique_ptr<PooledConnection> ConnectionPool::TakeFromSlot() {
  Slot* slot = HomeSlot(slots_);
  if (slot == nullptr || slot->conn.load(std::memory_order_relaxed) == nullptr) return nullptr;
  return std::unique_ptr<PooledConnection>(slot->conn.exchange(nullptr, std::memory_order_acq_rel));
}

std::unique_ptr<PooledConnection> ConnectionPool::ParkInSlot(
    std::unique_ptr<PooledConnection> conn) {
  Slot* slot = HomeSlot(slots_);
  PooledConnection* expected = nullptr;
  if (slot == nullptr ||
      !slot->conn.compare_exchange_strong(expected, conn.get(), std::memory_order_seq_cst)) {
    return conn;
  }
  conn.release();
  // Shutdown may have drained the slots between our check and the park: take it back.
  if (shutdown_.load(std::memory_order_acquire)) {
    return std::unique_ptr<PooledConnection>(
        slot->conn.exchange(nullptr, std::memory_order_acq_rel));
  }
  return nullptr;
}

void ConnectionPool::DrainSlots(std::vector<std::unique_ptr<PooledConnection>>* out) {
  for (Slot& slot : slots_) {
    if (PooledConnection* c = slot.conn.exchange(nullptr, std::memory_order_seq_cst)) {
      out->emplace_back(c);
    }
  }
}

void ConnectionPool::CloseLocked(int n) { open_ -= n; }

std::unique_ptr<PooledConnection> ConnectionPool::TakeDrainedLocked() {
  std::unique_ptr<PooledConnection> drained;
  for (size_t i = 0; i < draining_.size() && drained == nullptr;) {
    const PooledConnection::Drain d = draining_[i]->TryDrain();
    if (d == PooledConnection::Drain::kWait) {
      ++i;
      continue;
    }
    if (d == PooledConnection::Drain::kDone) drained = std::move(draining_[i]);
    if (d == PooledConnection::Drain::kFailed) CloseLocked(1);
    draining_.erase(draining_.begin() + static_cast<ptrdiff_t>(i));  // closes a failed one
  }
  return drained;
}

StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire(TimePoint deadline) {
  if (!shutdown_.load(std::memory_order_acquire)) {
    if (std::unique_ptr<PooledConnection> conn = TakeFromSlot()) {
      if (clock_.Now() - conn->last_used() <= options_.recheck_after_idle || !conn->PeerClosed()) {
        return Lease(this, std::move(conn));
      }
      VLOG(1) << "dropping a pooled connection to " << endpoint_.Address()
              << " that the server closed";
      conn.reset();
      std::lock_guard<std::mutex> lock(mu_);
      CloseLocked(1);
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (shutdown_.load(std::memory_order_relaxed)) {
      return Status::Error(StatusCode::kResourceExhausted,
                           "connection pool for " + endpoint_.Address() + " is shut down");
    }
    // Our slot was empty a moment ago, but CloseIdle (which holds mu_ while it has the slots'
    // connections) may have put ours back since: use it rather than open a second one.
    if (std::unique_ptr<PooledConnection> mine = TakeFromSlot()) idle_.push_back(std::move(mine));
    if (!idle_.empty()) {
      std::unique_ptr<PooledConnection> conn = std::move(idle_.back());
      idle_.pop_back();
      if (clock_.Now() - conn->last_used() <= options_.recheck_after_idle) {
        return Lease(this, std::move(conn));
      }
      lock.unlock();
      if (!conn->PeerClosed()) return Lease(this, std::move(conn));
      VLOG(1) << "dropping a pooled connection to " << endpoint_.Address()
              << " that the server closed";
      conn.reset();
      lock.lock();
      CloseLocked(1);
      continue;
    }
    if (!draining_.empty()) {
      if (std::unique_ptr<PooledConnection> drained = TakeDrainedLocked()) {
        return Lease(this, std::move(drained));
      }
    }
    if (open_ < options_.max_connections) {
      ++open_;
      lock.unlock();
      StatusOr<std::unique_ptr<PooledConnection>> conn = Connect(deadline);
      if (conn.ok()) return Lease(this, std::move(conn).value());
      lock.lock();
      CloseLocked(1);
      slot_freed_.notify_one();
      return conn.status();
    }
    // Every connection is leased or parked in other threads' slots: pull the parked ones into
    // the list, then wait for a return. Counting ourselves as a waiter before looking at the
    // slots pairs with Return: a connection parked after our look sees the count and wakes us
    // (both sides sequentially consistent, so at least one sees the other).
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::vector<std::unique_ptr<PooledConnection>> parked;
    DrainSlots(&parked);
    if (!parked.empty()) {
      waiters_.fetch_sub(1, std::memory_order_relaxed);
      for (auto& c : parked) idle_.push_back(std::move(c));
      continue;
    }
    const Duration left = deadline - clock_.Now();
    if (left <= Duration::zero()) {
      waiters_.fetch_sub(1, std::memory_order_relaxed);
      return Status::Error(StatusCode::kDeadlineExceeded,
                           "deadline passed waiting for one of " +
                               std::to_string(options_.max_connections) + " busy connections to " +
                               endpoint_.Address());
    }
    // A draining connection frees itself without a return to wake us: look again soon.
    slot_freed_.wait_for(lock, draining_.empty() ? left : std::min<Duration>(left, kDrainRecheck));
    waiters_.fetch_sub(1, std::memory_order_relaxed);
  }
}

StatusOr<std::unique_ptr<PooledConnection>> ConnectionPool::Connect(TimePoint deadline) {
  const Duration left = deadline - clock_.Now();
  if (left <= Duration::zero()) {
    return Status::Error(StatusCode::kDeadlineExceeded,
                         "deadline passed before connecting to " + endpoint_.Address());
  }
  auto socket = std::make_shared<TSocket>(endpoint_.host, endpoint_.port);
  socket->setNoDelay(true);
  socket->setConnTimeout(ClampMillis(std::min(left, options_.connect_timeout)));
  auto transport = MakeClientFramedTransport(socket, options_.max_frame_size);
  try {
    transport->open();
  } catch (const TTransportException& e) {
    return Status::Error(StatusCode::kTransport,
                         "connect to " + endpoint_.Address() + " failed: " + e.what());
  }
  auto protocol = MakeClientProtocol(options_.protocol, transport, options_.max_frame_size);
  auto conn = std::make_unique<PooledConnection>(std::move(socket), std::move(transport),
                                                 std::move(protocol));
  conn->set_last_used(clock_.Now());
  return conn;
}

void ConnectionPool::Return(std::unique_ptr<PooledConnection> conn) {
  // A reply still owed would be read by the next call as its own: such a connection is closed,
  // or kept aside until that reply has come and been dropped (a hedge race's loser).
  if (conn->Drainable()) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!shutdown_.load(std::memory_order_relaxed) &&
        static_cast<int>(draining_.size()) < options_.max_idle) {
      conn->set_last_used(clock_.Now());
      draining_.push_back(std::move(conn));
      return;
    }
  }
  if (!conn->broken() && !conn->AwaitingReply()) {
    conn->set_last_used(clock_.Now());
    if (waiters_.load(std::memory_order_relaxed) == 0 &&
        !shutdown_.load(std::memory_order_acquire)) {
      conn = ParkInSlot(std::move(conn));
      if (conn == nullptr) {
        // A caller may have started waiting after our look at waiters_ and before the park,
        // without seeing the parked connection: wake it (see Acquire).
        if (waiters_.load(std::memory_order_seq_cst) > 0) {
          std::lock_guard<std::mutex> lock(mu_);
          slot_freed_.notify_all();
        }
        return;
      }
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (!shutdown_.load(std::memory_order_relaxed) &&
        static_cast<int>(idle_.size()) < options_.max_idle) {
      idle_.push_back(std::move(conn));
      lock.unlock();
      slot_freed_.notify_one();
      return;
    }
  }
  conn.reset();  // closes the socket, outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    CloseLocked(1);
  }
  slot_freed_.notify_one();
}

void ConnectionPool::CloseIdle() {
  // Every idle connection, parked in a slot (`slot` >= 0) or on the list (-1).
  struct Held {
    std::unique_ptr<PooledConnection> conn;
    int slot;
  };
  std::vector<Held> held;
  std::vector<std::unique_ptr<PooledConnection>> expired;
  bool put_back = false;
  {
    // The slots are emptied under mu_: a caller that finds its slot empty meanwhile takes mu_
    // next, and by then its connection is back (Acquire looks again), instead of opening
    // another or waiting for one nobody will return.
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < kSlots; ++i) {
      if (PooledConnection* c = slots_[i].conn.exchange(nullptr, std::memory_order_seq_cst)) {
        held.push_back({std::unique_ptr<PooledConnection>(c), static_cast<int>(i)});
      }
    }
    const TimePoint now = clock_.Now();
    for (auto& c : idle_) held.push_back({std::move(c), -1});
    idle_.clear();
    // Drained connections join the idle ones; those whose reply is broken or later than
    // idle_timeout close (counted with the expired ones below).
    std::vector<std::unique_ptr<PooledConnection>> still_draining;
    for (auto& c : draining_) {
      const PooledConnection::Drain d = c->TryDrain();
      if (d == PooledConnection::Drain::kDone) {
        held.push_back({std::move(c), -1});
      } else if (d == PooledConnection::Drain::kWait &&
                 now - c->last_used() <= options_.idle_timeout) {
        still_draining.push_back(std::move(c));
      } else {
        expired.push_back(std::move(c));
      }
    }
    draining_ = std::move(still_draining);
    // The most recently used are kept: at most max_idle, none idle for over idle_timeout.
    std::stable_sort(held.begin(), held.end(), [](const Held& a, const Held& b) {
      return a.conn->last_used() > b.conn->last_used();
    });
    const size_t keep = static_cast<size_t>(std::max(0, options_.max_idle));
    size_t kept = 0;
    for (Held& h : held) {
      if (kept >= keep || now - h.conn->last_used() > options_.idle_timeout) {
        expired.push_back(std::move(h.conn));
        continue;
      }
      ++kept;
      put_back = true;
      // A parked connection goes back to its own slot: its thread finds it there on the next
      // call as if nothing happened. Reshuffling every thread's connection here twice a second
      // cost 5-10% of end-to-end throughput (docs/benchmarks.md).
      PooledConnection* expected = nullptr;
      if (h.slot >= 0 && !shutdown_.load(std::memory_order_acquire) &&
          slots_[static_cast<size_t>(h.slot)].conn.compare_exchange_strong(
              expected, h.conn.get(), std::memory_order_acq_rel)) {
        h.conn.release();
        continue;
      }
      idle_.push_back(std::move(h.conn));
    }
    std::reverse(idle_.begin(), idle_.end());  // the list keeps the most recently used last
    CloseLocked(static_cast<int>(expired.size()));
  }
  // Shutdown may have drained the slots while connections were being put back: close those.
  if (shutdown_.load(std::memory_order_acquire)) {
    std::vector<std::unique_ptr<PooledConnection>> parked;
    DrainSlots(&parked);
    std::lock_guard<std::mutex> lock(mu_);
    CloseLocked(static_cast<int>(parked.size()));
    for (auto& c : parked) expired.push_back(std::move(c));
  }
  if (!expired.empty() || (put_back && waiters_.load(std::memory_order_seq_cst) > 0)) {
    slot_freed_.notify_all();
  }
}

Pipeline& ConnectionPool::pipeline() {
  std::call_once(pipeline_once_, [this] {
    pipeline_ = std::make_unique<Pipeline>(endpoint_, options_, clock_);
    has_pipeline_.store(true);  // sequentially consistent with shutdown_ (as in Shutdown)
  });
  // Made after Shutdown: refuses at once.
  if (shutdown_.load()) pipeline_->Shutdown();
  return *pipeline_;
}

int ConnectionPool::pipelined_connections() const {
  return has_pipeline_.load() ? pipeline_->open_connections() : 0;
}

void ConnectionPool::Shutdown() {
  std::vector<std::unique_ptr<PooledConnection>> idle;
  shutdown_.store(true);
  if (has_pipeline_.load()) pipeline_->Shutdown();
  DrainSlots(&idle);
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& c : idle_) idle.push_back(std::move(c));
    idle_.clear();
    for (auto& c : draining_) idle.push_back(std::move(c));
    draining_.clear();
    CloseLocked(static_cast<int>(idle.size()));
  }
  slot_freed_.notify_all();  // waiters fail with kResourceExhausted
}

int ConnectionPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

int ConnectionPool::draining_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(draining_.size());
}

int ConnectionPool::idle_connections() const {
  int parked = 0;
  for (const Slot& slot : slots_) parked += slot.conn.load(std::memory_order_relaxed) ? 1 : 0;
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(idle_.size()) + parked;
}

}  // namespace fulcrum::internal
