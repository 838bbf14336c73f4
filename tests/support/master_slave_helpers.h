// Small fakes for master-slave tests: heartbeat replies a registry would send (and, through
// support/ports.h, DeadPort(): a loopback port nobody listens on).
//
//   role->Apply(fulcrum::testing::MasterReply(2, "127.0.0.1:9001"));
//   fulcrum::Endpoint dead{"127.0.0.1", fulcrum::testing::DeadPort()};
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "fulcrum/registrar.h"
#include "support/ports.h"  // DeadPort()

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

}  // namespace fulcrum::testing
