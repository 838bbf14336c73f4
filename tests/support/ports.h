// Loopback ports for tests: picked by the OS, and held for as long as the test needs them.
//
//   uint16_t port = 0;
//   int fd = fulcrum::testing::BindLoopback(&port);        // bound, not listening
//   fulcrum::Endpoint dead{"127.0.0.1", fulcrum::testing::DeadPort()};
//
// Thread-safe (no shared state).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace fulcrum::testing {

// A TCP socket bound to 127.0.0.1 on a port the OS picks, not listening (a connect to it is
// refused); fills `port`. -1 on failure (errno says why). While the socket stays open, the
// kernel hands that port to nobody else, outgoing connections included.
inline int BindLoopback(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// A loopback port nobody listens on: connecting is refused. The socket stays bound until the
// process exits, so no server started meanwhile, in this process or a parallel test's, can be
// handed the same port and answer calls meant to fail.
inline uint16_t DeadPort() {
  uint16_t port = 0;
  if (BindLoopback(&port) < 0) {  // the descriptor is deliberately kept: it holds the port
    std::perror("DeadPort: reserving a loopback port");
    std::abort();
  }
  return port;
}

}  // namespace fulcrum::testing
