#include "support/bad_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <vector>

namespace fulcrum::testing {

namespace {

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the client went away; nothing to report
    sent += static_cast<size_t>(n);
  }
}

std::string Frame(const std::string& body) {
  const uint32_t size = htonl(static_cast<uint32_t>(body.size()));
  return std::string(reinterpret_cast<const char*>(&size), sizeof(size)) + body;
}

}  // namespace

BadServer::~BadServer() { Stop(); }

Status BadServer::Start() {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return Status::Error(StatusCode::kInternal, "socket() failed");
  const int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listen_fd_, 128) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      ::pipe2(wake_, O_CLOEXEC) != 0) {
    const std::string why = std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return Status::Error(StatusCode::kInternal, "BadServer cannot listen: " + why);
  }
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void BadServer::Stop() {
  if (!thread_.joinable()) return;
  const char byte = 0;
  [[maybe_unused]] ssize_t n = ::write(wake_[1], &byte, 1);
  thread_.join();
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  listen_fd_ = -1;
}

void BadServer::Run() {
  std::map<int, std::string> clients;  // fd -> bytes read and not yet answered
  std::map<int, int> trickling;        // kTrickle: fd -> body bytes still to send
  auto drop = [&](int fd) {
    ::close(fd);
    clients.erase(fd);
    trickling.erase(fd);
  };
  for (;;) {
    std::vector<pollfd> fds = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto& [fd, unused] : clients) fds.push_back({fd, POLLIN, 0});
    const int rc = ::poll(fds.data(), fds.size(), trickling.empty() ? -1 : 20);
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (rc == 0) {
      for (auto it = trickling.begin(); it != trickling.end();) {
        SendAll(it->first, std::string(1, 'x'));
        it = --it->second > 0 ? std::next(it) : trickling.erase(it);
      }
      continue;
    }
    if (fds[0].revents != 0) break;
    if (fds[1].revents & POLLIN) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) {
        ++accepted_;
        if (mode_ == Mode::kCloseOnAccept) {
          ::close(fd);
        } else {
          clients[fd];
        }
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      char buf[65536];
      const ssize_t got = ::recv(fd, buf, sizeof(buf), 0);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) continue;
        drop(fd);
        continue;
      }
      std::string& pending = clients[fd];
      pending.append(buf, static_cast<size_t>(got));
      bool close_now = false;
      // Answer every complete frame the client sent.
      while (!close_now && pending.size() >= 4) {
        uint32_t size;
        std::memcpy(&size, pending.data(), sizeof(size));
        size = ntohl(size);
        if (pending.size() - 4 < size) break;
        pending.erase(0, 4 + static_cast<size_t>(size));
        ++requests_;
        switch (mode_) {
          case Mode::kGarbageFrame:
            // 0xFF is a bad version byte in both the binary and the compact protocol.
            SendAll(fd, Frame(std::string(32, '\xff')));
            break;
          case Mode::kGarbageBytes:
            SendAll(fd, std::string(32, '\xff'));  // a negative frame size
            break;
          case Mode::kHalfFrame: {
            const std::string frame = Frame(std::string(64, '\x80'));
            SendAll(fd, frame.substr(0, frame.size() / 2));
            close_now = true;
            break;
          }
          case Mode::kTrickle: {
            constexpr int kBody = 4096;
            const uint32_t size = htonl(kBody);
            SendAll(fd, std::string(reinterpret_cast<const char*>(&size), sizeof(size)));
            trickling[fd] = kBody;
            break;
          }
          case Mode::kHang:
          case Mode::kCloseOnAccept:
            break;
        }
      }
      if (close_now) drop(fd);
    }
  }
  for (const auto& [fd, unused] : clients) ::close(fd);
}

}  // namespace fulcrum::testing
