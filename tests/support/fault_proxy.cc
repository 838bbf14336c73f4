#include "support/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fulcrum::testing {

namespace {

constexpr int kPollMs = 20;  // how often a forwarding thread looks at the mode again
constexpr auto kTrickleInterval = std::chrono::milliseconds(20);

// Closes `fd` so that the peer sees a reset, not an orderly close.
void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

int ConnectTo(const std::string& host, uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

struct FaultProxy::Link {
  int fds[2] = {-1, -1};  // client, upstream
  int wake[2] = {-1, -1};
  std::atomic<bool> reset{false};
  std::atomic<bool> done{false};
  std::thread thread;

  ~Link() {
    for (int fd : wake) {
      if (fd >= 0) ::close(fd);
    }
  }

  void Wake() {
    const char c = 0;
    [[maybe_unused]] ssize_t n = ::write(wake[1], &c, 1);
  }
};

FaultProxy::FaultProxy(std::string upstream_host, uint16_t upstream_port)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {}

FaultProxy::~FaultProxy() { Stop(); }

Status FaultProxy::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    return Status::Error(StatusCode::kUnavailable,
                         std::string("fault proxy: cannot listen: ") + std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
  return Status::Ok();
}

void FaultProxy::Stop() {
  if (stopping_.exchange(true)) return;
  if (acceptor_.joinable()) {
    const char c = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &c, 1);
    acceptor_.join();
  }
  std::vector<std::shared_ptr<Link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    links.swap(links_);
  }
  for (const auto& link : links) {
    link->Wake();
    if (link->thread.joinable()) link->thread.join();
  }
  for (int* fd : {&listen_fd_, &wake_[0], &wake_[1]}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void FaultProxy::ResetAll() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& link : links_) {
    link->reset = true;
    link->Wake();
  }
}

int FaultProxy::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& link : links_) n += link->done ? 0 : 1;
  return n;
}

void FaultProxy::AcceptLoop() {
  while (!stopping_) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0 && errno != EINTR) return;
    if (stopping_ || (p[1].revents & POLLIN) != 0) return;
    if ((p[0].revents & POLLIN) == 0) continue;
    const int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    accepted_.fetch_add(1);
    if (mode_.load() == Mode::kRefuse) {
      CloseWithReset(client);
      continue;
    }
    const int one = 1;
    ::setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int upstream = ConnectTo(upstream_host_, upstream_port_);
    if (upstream < 0) {  // the upstream is down: so is the proxy, as the client sees it
      CloseWithReset(client);
      continue;
    }
    auto link = std::make_shared<Link>();
    link->fds[0] = client;
    link->fds[1] = upstream;
    if (::pipe2(link->wake, O_CLOEXEC) != 0) {
      CloseWithReset(client);
      CloseWithReset(upstream);
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    links_.push_back(link);
    link->thread = std::thread([this, link] { Forward(link); });
  }
}

void FaultProxy::Forward(const std::shared_ptr<Link>& link) {
  bool open[2] = {true, true};  // direction i: reading fds[i], writing fds[1 - i]
  char buffer[64 * 1024];
  while (!stopping_ && !link->reset && (open[0] || open[1])) {
    const Mode mode = mode_.load();
    pollfd p[3] = {{link->fds[0], 0, 0}, {link->fds[1], 0, 0}, {link->wake[0], POLLIN, 0}};
    if (mode != Mode::kBlackhole) {
      for (int i = 0; i < 2; ++i) p[i].events = open[i] ? POLLIN : 0;
    }
    if (::poll(p, 3, kPollMs) < 0 && errno != EINTR) break;
    if ((p[2].revents & POLLIN) != 0) {
      char drain[16];
      [[maybe_unused]] ssize_t n = ::read(link->wake[0], drain, sizeof(drain));
      continue;  // the loop condition or the mode changed
    }
    for (int i = 0; i < 2; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0 || !open[i]) continue;
      const size_t want = mode == Mode::kTrickle ? 1 : sizeof(buffer);
      const ssize_t n = ::recv(link->fds[i], buffer, want, 0);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {  // a reset: pass it on
          link->reset = true;
          break;
        }
        open[i] = false;  // an orderly close: pass on the half-close
        ::shutdown(link->fds[1 - i], SHUT_WR);
        continue;
      }
      const Duration delay =
          mode == Mode::kTrickle ? Duration(kTrickleInterval) : Duration(latency_ns_.load());
      if (delay > Duration::zero()) std::this_thread::sleep_for(delay);
      if (!SendAll(link->fds[1 - i], buffer, static_cast<size_t>(n))) {
        link->reset = true;
        break;
      }
    }
  }
  if (link->reset || stopping_) {
    CloseWithReset(link->fds[0]);
    CloseWithReset(link->fds[1]);
  } else {
    ::close(link->fds[0]);
    ::close(link->fds[1]);
  }
  link->done = true;  // the wake pipe lives as long as the Link: Stop and ResetAll may write
}

}  // namespace fulcrum::testing
