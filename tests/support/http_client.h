// A minimal HTTP/1.1 client for tests of admin pages and for asking Prometheus' API: one
// request per connection, loopback only, bounded in time.
//
//   HttpReply r = HttpGet(port, "/status?format=json");
//   EXPECT_EQ(r.status, 200);
//   HttpReply raw = HttpExchange(port, "POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
//
// Thread-safe (no shared state).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <string>

namespace fulcrum::testing {

struct HttpReply {
  int status = 0;  // 0: no (complete) reply: refused, timed out, or closed early
  std::string headers;
  std::string body;
};

// A TCP connection to 127.0.0.1:port, or -1.
inline int ConnectLoopback(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads until the peer closes or `timeout` passes; parses status, headers and body.
inline HttpReply ReadReply(int fd, std::chrono::milliseconds timeout) {
  std::string data;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[16384];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  HttpReply reply;
  const size_t end = data.find("\r\n\r\n");
  if (data.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return reply;
  reply.status = std::atoi(data.c_str() + 9);
  reply.headers = data.substr(0, end);
  reply.body = data.substr(end + 4);
  return reply;
}

// Sends `request` as is and reads the reply (the server should close: send Connection: close).
inline HttpReply HttpExchange(int port, const std::string& request,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return {};
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  HttpReply reply = ReadReply(fd, timeout);
  ::close(fd);
  return reply;
}

inline HttpReply HttpGet(int port, const std::string& target,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return HttpExchange(
      port, "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", timeout);
}

// Percent-encodes a query parameter value (for PromQL in a URL).
inline std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace fulcrum::testing
