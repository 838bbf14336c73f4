#include "transport/pipeline.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <glog/logging.h>

#include "transport/io_loop.h"
#include "transport/message_header.h"

namespace fulcrum::internal {

namespace {

constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;
constexpr size_t kReadChunk = 64 * 1024;

std::string Errno(const char* what, int err) { return std::string(what) + ": " + strerror(err); }

}  // namespace

// One pipelined connection. Its requests are answered in the order they were queued.
class PipelinedConnection final : public IoLoop::Handler,
                                  public std::enable_shared_from_this<PipelinedConnection> {
 public:
  static constexpr size_t kDeferDepth = 2;

  PipelinedConnection(const Endpoint& endpoint, const PoolOptions& options, const Clock& clock)
      : address_(endpoint.Address()), options_(options), clock_(clock) {}
  ~PipelinedConnection() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Starts a non-blocking connect. On failure the connection is closed and `error` says why.
  void Open(const Endpoint& endpoint, std::string* error);

  // Queues a request. False when the connection is closed or closing (nothing was queued).
  bool Send(std::string_view message, TimePoint deadline, PipelineRequest* request);

  // True when the peer has closed a connection idle this long (a request sent now would
  // likely meet the close).
  bool Stale(TimePoint now);
  // Closes the connection once no request waits on it.
  void CloseWhenIdle();
  bool usable() const {
    std::lock_guard<std::mutex> lock(mu_);
    return state_ != State::kClosed && !close_when_idle_;
  }
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }

  void OnEvents(uint32_t events) override;
  void OnTick(TimePoint now) override;

 private:
  enum class State { kConnecting, kOpen, kClosed };
  struct Entry {
    int32_t seqid;
    TimePoint deadline;
    PipelineRequest* request;  // null once answered early (its deadline passed)
    uint64_t end;              // queued_bytes_ after it: sent once written_bytes_ reaches it
  };
  // Requests to tell, with what; built under the lock, told after it.
  struct Told {
    PipelineRequest* request;
    bool sent;
  };

  void Flush(std::unique_lock<std::mutex>& lock);
  void ReadReplies();
  // Parses the complete replies at the front of in_; false when the connection failed.
  bool TakeReplies();
  // Closes under the lock and says whom to tell.
  std::vector<Told> CloseLocked();
  void Fail(std::unique_lock<std::mutex>& lock, StatusCode code, const std::string& why);
  void Tell(const std::vector<Told>& told, StatusCode code, const std::string& why, bool connected);

  const std::string address_;
  const PoolOptions options_;
  const Clock& clock_;
  int fd_ = -1;
  uint64_t loop_id_ = 0;

  mutable std::mutex mu_;  // guards everything below but in_ / in_used_
  State state_ = State::kConnecting;
  bool was_open_ = false;
  bool writing_ = false;     // a thread is in send(), unlocked
  bool want_write_ = false;  // the socket was full: the loop sends when it is writable
  bool close_when_idle_ = false;
  std::string out_;    // framed requests not yet given to send()
  std::string spare_;  // the other buffer, kept for its capacity
  uint64_t queued_bytes_ = 0;
  uint64_t written_bytes_ = 0;
  size_t on_wire_ = 0;  // the first this many of pending_ have fully left
  std::deque<Entry> pending_;
  int32_t next_seqid_ = 1;
  TimePoint connect_deadline_{};
  TimePoint next_check_ = TimePoint::max();  // no request's deadline is earlier
  TimePoint last_active_{};
  std::atomic<int64_t> in_flight_{0};

  std::vector<uint8_t> in_;  // the loop thread's only
  size_t in_used_ = 0;
};

void PipelinedConnection::Open(const Endpoint& endpoint, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(endpoint.port);
  const int rc = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    *error = "connect to " + address_ + " failed: " + gai_strerror(rc);
    state_ = State::kClosed;
    return;
  }
  int err = 0;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    const int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
      fd_ = fd;
      break;
    }
    err = errno;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  if (fd_ < 0) {
    *error = "connect to " + address_ + " failed: " + strerror(err);
    state_ = State::kClosed;
    return;
  }
  const TimePoint now = clock_.Now();
  connect_deadline_ = now + options_.connect_timeout;
  last_active_ = now;
  IoLoop& loop = IoLoop::Instance();
  loop_id_ = loop.NewId();
  loop.Add(loop_id_, fd_, kReadEvents | EPOLLOUT, shared_from_this());
}

bool PipelinedConnection::Send(std::string_view message, TimePoint deadline,
                               PipelineRequest* request) {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ == State::kClosed || close_when_idle_) return false;
  const size_t start = out_.size();
  out_.append(4, '\0');
  const int32_t seqid = next_seqid_;
  next_seqid_ = next_seqid_ == INT32_MAX ? 1 : next_seqid_ + 1;
  if (!AppendWithSeqId(options_.protocol, message, seqid, out_)) {
    out_.resize(start);
    lock.unlock();
    PipelineResult r;
    r.code = StatusCode::kInternal;
    r.detail = "the request is not a Thrift message";
    request->OnReply(r);
    return true;
  }
  const uint32_t len = static_cast<uint32_t>(out_.size() - start - 4);
  out_[start] = static_cast<char>(len >> 24);
  out_[start + 1] = static_cast<char>(len >> 16);
  out_[start + 2] = static_cast<char>(len >> 8);
  out_[start + 3] = static_cast<char>(len);
  queued_bytes_ += len + 4;
  pending_.push_back({seqid, deadline, request, queued_bytes_});
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  next_check_ = std::min(next_check_, deadline);
  // With kDeferDepth requests on the wire a reply is coming, and the server has work queued:
  // the loop thread sends this one with whatever else is queued once it has read the replies
  // (one send() for many requests instead of one each). Otherwise it leaves now.
  if (state_ == State::kOpen && !writing_ && !want_write_ && on_wire_ < kDeferDepth) {
    Flush(lock);
  }
  return true;
}

void PipelinedConnection::Flush(std::unique_lock<std::mutex>& lock) {
  writing_ = true;
  while (!out_.empty() && state_ == State::kOpen) {
    std::string buf = std::move(out_);
    out_ = std::move(spare_);
    out_.clear();
    lock.unlock();
    size_t off = 0;
    int err = 0;
    while (off < buf.size()) {
      const ssize_t n =
          ::send(fd_, buf.data() + off, buf.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        off += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) err = errno;
        break;
      }
    }
    lock.lock();
    written_bytes_ += off;
    while (on_wire_ < pending_.size() && pending_[on_wire_].end <= written_bytes_) ++on_wire_;
    if (err != 0) {
      writing_ = false;
      Fail(lock, StatusCode::kTransport, Errno("send", err));
      return;
    }
    if (off < buf.size()) {
      // The socket is full: the rest leaves first, when the loop sees it writable.
      buf.erase(0, off);
      buf.append(out_);
      out_.swap(buf);
      want_write_ = true;
      IoLoop::Instance().Modify(loop_id_, fd_, kReadEvents | EPOLLOUT);
      break;
    }
    buf.clear();
    spare_.swap(buf);
  }
  writing_ = false;
}

void PipelinedConnection::OnEvents(uint32_t events) {
  if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) {
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::kConnecting) {
      int err = 0;
      socklen_t len = sizeof err;
      if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err != 0) {
        Fail(lock, StatusCode::kTransport, "connect to " + address_ + " failed: " + strerror(err));
        return;
      }
      state_ = State::kOpen;
      was_open_ = true;
      IoLoop::Instance().Modify(loop_id_, fd_, kReadEvents);
      if (!writing_) Flush(lock);
    } else if (state_ == State::kOpen && want_write_ && !writing_) {
      want_write_ = false;
      IoLoop::Instance().Modify(loop_id_, fd_, kReadEvents);
      Flush(lock);
    }
  }
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) ReadReplies();
}

void PipelinedConnection::ReadReplies() {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (state_ != State::kOpen) return;
    }
    if (in_.size() - in_used_ < kReadChunk) in_.resize(in_used_ + kReadChunk);
    const ssize_t n = ::recv(fd_, in_.data() + in_used_, in_.size() - in_used_, 0);
    if (n > 0) {
      in_used_ += static_cast<size_t>(n);
      if (!TakeReplies()) return;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    std::unique_lock<std::mutex> lock(mu_);
    Fail(lock, StatusCode::kTransport,
         n == 0 ? "connection closed by " + address_ : Errno("recv", errno));
    return;
  }
}

bool PipelinedConnection::TakeReplies() {
  size_t off = 0;
  bool ok = true;
  while (in_used_ - off >= 4) {
    const uint8_t* p = in_.data() + off;
    const uint32_t len =
        (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ != State::kOpen) return false;
    if (len > options_.max_frame_size) {
      Fail(lock, StatusCode::kProtocol,
           "a reply frame of " + std::to_string(len) + " bytes is over max_frame_size");
      return false;
    }
    if (in_used_ - off - 4 < len) break;
    const uint8_t* frame = p + 4;
    const StatusOr<int32_t> seqid = ReadSeqId(options_.protocol, frame, len);
    if (pending_.empty() || !seqid.ok() || *seqid != pending_.front().seqid) {
      Fail(lock, StatusCode::kProtocol,
           pending_.empty() ? "a reply no request asked for"
           : !seqid.ok()    ? seqid.status().message()
                            : "reply seqid " + std::to_string(*seqid) + ", expected " +
                               std::to_string(pending_.front().seqid));
      return false;
    }
    const Entry e = pending_.front();
    pending_.pop_front();
    if (on_wire_ > 0) --on_wire_;
    in_flight_.fetch_sub(1, std::memory_order_relaxed);
    last_active_ = clock_.Now();
    // Shutting down and this was the last request: closed (nobody else to tell).
    const bool last = close_when_idle_ && pending_.empty();
    if (last) CloseLocked();
    lock.unlock();
    off += 4 + len;
    if (e.request != nullptr) {
      PipelineResult r;
      r.connected = true;
      r.sent = true;
      r.data = frame;
      r.size = len;
      e.request->OnReply(r);
    }
    if (last) {
      ok = false;
      break;
    }
    // Otherwise the next turn sees (under the lock) whether the connection closed meanwhile.
  }
  if (off > 0) {
    std::memmove(in_.data(), in_.data() + off, in_used_ - off);
    in_used_ -= off;
    // What callers queued behind the requests just answered (see Send).
    std::unique_lock<std::mutex> lock(mu_);
    if (state_ == State::kOpen && !out_.empty() && !writing_ && !want_write_) Flush(lock);
  }
  if (in_.size() > 4 * kReadChunk && in_used_ < kReadChunk) {
    in_.resize(kReadChunk);
    in_.shrink_to_fit();
  }
  return ok;
}

std::vector<PipelinedConnection::Told> PipelinedConnection::CloseLocked() {
  std::vector<Told> told;
  if (state_ == State::kClosed) return told;
  state_ = State::kClosed;
  for (const Entry& e : pending_) {
    if (e.request != nullptr) told.push_back({e.request, e.end <= written_bytes_});
  }
  in_flight_.fetch_sub(static_cast<int64_t>(pending_.size()), std::memory_order_relaxed);
  pending_.clear();
  on_wire_ = 0;
  out_.clear();
  if (fd_ >= 0) {
    // The descriptor is closed by the destructor: a writer may still be in send() on it.
    ::shutdown(fd_, SHUT_RDWR);
    IoLoop::Instance().Remove(loop_id_, fd_);
  }
  return told;
}

void PipelinedConnection::Fail(std::unique_lock<std::mutex>& lock, StatusCode code,
                               const std::string& why) {
  const bool connected = was_open_;
  const std::vector<Told> told = CloseLocked();
  lock.unlock();
  Tell(told, code, why, connected);
}

void PipelinedConnection::Tell(const std::vector<Told>& told, StatusCode code,
                               const std::string& why, bool connected) {
  for (const Told& t : told) {
    PipelineResult r;
    r.code = code;
    r.detail = why;
    r.connected = connected;
    r.sent = connected && t.sent;
    t.request->OnReply(r);
  }
}

void PipelinedConnection::OnTick(TimePoint now) {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting && now >= connect_deadline_) {
    Fail(lock, StatusCode::kTransport, "connect to " + address_ + " timed out");
    return;
  }
  if (pending_.empty()) {
    if (state_ == State::kOpen && now - last_active_ >= options_.idle_timeout) {
      CloseLocked();
    }
    return;
  }
  if (now < next_check_) return;
  std::vector<Told> expired;
  next_check_ = TimePoint::max();
  for (Entry& e : pending_) {
    if (e.request != nullptr && e.deadline <= now) {
      expired.push_back({e.request, e.end <= written_bytes_});
      e.request = nullptr;
    }
    next_check_ = std::min(next_check_,
                           e.request != nullptr ? e.deadline : e.deadline + Pipeline::kStallGrace);
  }
  const bool stalled = pending_.front().deadline + Pipeline::kStallGrace <= now;
  const bool connected = was_open_;
  std::vector<Told> failed;
  if (stalled) failed = CloseLocked();
  lock.unlock();
  Tell(expired, StatusCode::kDeadlineExceeded, "deadline exceeded waiting for the reply",
       connected);
  Tell(failed, StatusCode::kTransport,
       "connection to " + address_ + " closed: the server is stuck on an earlier request",
       connected);
}

bool PipelinedConnection::Stale(TimePoint now) {
  std::unique_lock<std::mutex> lock(mu_);
  if (state_ != State::kOpen || !pending_.empty() ||
      now - last_active_ < options_.recheck_after_idle) {
    return false;
  }
  char c;
  const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    CloseLocked();
    return true;
  }
  last_active_ = now;
  return false;
}

void PipelinedConnection::CloseWhenIdle() {
  std::lock_guard<std::mutex> lock(mu_);
  close_when_idle_ = true;
  if (pending_.empty()) CloseLocked();
}

Pipeline::Pipeline(Endpoint endpoint, PoolOptions options, const Clock& clock)
    : endpoint_(std::move(endpoint)), options_(std::move(options)), clock_(clock) {
  connections_.resize(static_cast<size_t>(std::max(1, options_.pipelined_connections)));
}

Pipeline::~Pipeline() { Shutdown(); }

void Pipeline::Send(std::string_view message, TimePoint deadline, PipelineRequest* request) {
  std::string error;  // why a connect failed; built only on failure
  for (int tries = 0; tries < 2; ++tries) {
    std::shared_ptr<PipelinedConnection> conn;
    size_t slot = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) break;
      // Fill first: the first open connection that is not full, else a new one in an empty
      // slot, else the least loaded (PoolOptions::pipeline_depth).
      size_t empty = connections_.size();
      size_t least = 0;
      int64_t least_load = INT64_MAX;
      bool found = false;
      for (size_t i = 0; i < connections_.size(); ++i) {
        const auto& c = connections_[i];
        if (c == nullptr || !c->usable()) {
          if (empty == connections_.size()) empty = i;
          continue;
        }
        const int64_t load = c->in_flight();
        if (load < options_.pipeline_depth) {
          slot = i;
          found = true;
          break;
        }
        if (load < least_load) {
          least_load = load;
          least = i;
        }
      }
      if (!found) slot = empty < connections_.size() ? empty : least;
      conn = connections_[slot];
    }
    if (conn != nullptr && (!conn->usable() || conn->Stale(clock_.Now()))) conn = nullptr;
    if (conn == nullptr) {
      conn = std::make_shared<PipelinedConnection>(endpoint_, options_, clock_);
      std::string why;
      conn->Open(endpoint_, &why);
      if (!why.empty()) {
        error = std::move(why);
        break;
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) {
        conn->CloseWhenIdle();
        break;
      }
      connections_[slot] = conn;
    }
    if (conn->Send(message, deadline, request)) return;
  }
  PipelineResult r;
  {
    std::lock_guard<std::mutex> lock(mu_);
    r.code = shutdown_ ? StatusCode::kResourceExhausted : StatusCode::kTransport;
    r.detail = shutdown_       ? "endpoint " + endpoint_.Address() + " left the set"
               : error.empty() ? "connection to " + endpoint_.Address() + " closed"
                               : error;
  }
  request->OnReply(r);
}

void Pipeline::Shutdown() {
  std::vector<std::shared_ptr<PipelinedConnection>> conns;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    conns.swap(connections_);
  }
  for (auto& c : conns) {
    if (c != nullptr) c->CloseWhenIdle();
  }
}

int Pipeline::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& c : connections_) n += c != nullptr && c->usable() ? 1 : 0;
  return n;
}

int64_t Pipeline::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t n = 0;
  for (const auto& c : connections_) n += c != nullptr ? c->in_flight() : 0;
  return n;
}

}  // namespace fulcrum::internal
