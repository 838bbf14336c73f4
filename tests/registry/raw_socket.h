// Raw loopback sockets for the registry's bad-input tests: connect, write junk, and see the
// registry close that connection.
//
//   ExpectJunkConnectionsClosed(port);   // garbage, an oversized frame and HTTP: each closed
//
// Thread-safe (no shared state).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace fulcrum::registry_test {

// A raw TCP connection to 127.0.0.1:port, or -1.
inline int RawConnect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
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

// True once the peer closed the connection (read returns 0 or an error) within `timeout`.
inline bool ClosedByPeer(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[256];
  return ::read(fd, buf, sizeof(buf)) <= 0;
}

// Sends each kind of junk on its own connection and expects the registry to close it:
// a plausible frame length followed by bytes that are not Thrift; a header announcing 2 GiB;
// HTTP (read as a ~1.2 GB frame length); a well-formed `lookup` call in the old binary
// encoding without a version header, which only a server reading non-strictly would answer
// (every Fulcrum port reads strictly: fulcrum/server_transport.h). The connections stay open
// for the caller's checks.
inline void ExpectJunkConnectionsClosed(int port) {
  const std::string junks[] = {
      std::string("\x00\x00\x00\x10", 4) + "this is not thrift",
      "\x7f\xff\xff\xff",
      "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
      // frame length 16; name length 6, "lookup", CALL, seqid 1; empty arguments (stop)
      std::string("\x00\x00\x00\x10\x00\x00\x00\x06lookup\x01\x00\x00\x00\x01\x00", 20)};
  for (const std::string& junk : junks) {
    const int fd = RawConnect(port);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
    EXPECT_TRUE(ClosedByPeer(fd, std::chrono::seconds(10))) << "junk: " << junk;
    ::close(fd);
  }
}

}  // namespace fulcrum::registry_test
