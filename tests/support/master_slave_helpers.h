// Small fakes for master-slave tests: heartbeat replies a registry would send, and a loopback
// port nobody listens on.
//
//   role->Apply(fulcrum::testing::MasterReply(2, "127.0.0.1:9001"));
//   fulcrum::Endpoint dead{"127.0.0.1", fulcrum::testing::DeadPort()};
//
// Thread-safe.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fulcrum/registrar.h"

namespace fulcrum::testing {

// What the registry answers its master: role, epoch, and a long lease from now.
inline RegistrarDirectives MasterReply(int64_t epoch, const std::string& self) {
  RegistrarDirectives d;
  d.role = InstanceRole::kMaster;
  d.epoch = epoch;
  d.master_address = self;
  d.master_lease = std::chrono::seconds(60);
  d.sent_at = Clock::Real().Now();
  return d;
}

inline RegistrarDirectives SlaveReply(int64_t epoch, const std::string& master) {
  RegistrarDirectives d;
  d.role = InstanceRole::kSlave;
  d.epoch = epoch;
  d.master_address = master;
  return d;
}

// A loopback port nobody listens on: connecting is refused. The socket stays bound (never
// listening) until the process exits, so no server started meanwhile, in this process or a
// parallel test's, can be handed the same port and answer calls meant to fail.
inline uint16_t DeadPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("DeadPort: reserving a loopback port");
    std::abort();
  }
  return ntohs(addr.sin_port);  // fd is deliberately kept open: it holds the port
}

}  // namespace fulcrum::testing
