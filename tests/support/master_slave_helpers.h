// Small fakes for master-slave tests: heartbeat replies a registry would send, and a loopback
// port nobody listens on.
//
//   role->Apply(fulcrum::testing::MasterReply(2, "127.0.0.1:9001"));
//   fulcrum::Endpoint dead{"127.0.0.1", fulcrum::testing::DeadPort()};
//
// Thread-safe (pure functions).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
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

// A loopback port nobody listens on (bound, read back, closed): connecting is refused.
inline uint16_t DeadPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace fulcrum::testing
