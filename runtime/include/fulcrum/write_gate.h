// The server side of master-slave: admits a call to a write function only while RoleState
// says this instance is a writable master, and otherwise answers with the NotMaster refusal
// (docs/master-slave.md, "The wire"). fulcrum-gen's processor for a master-slave service
// overrides the stock processor's dispatchCall with exactly this:
//
//   static constexpr fulcrum::WriteFunction kWrites[] = {{"put", false}, {"log", true}};
//   bool dispatchCall(TProtocol* in, TProtocol* out, const std::string& fname, int32_t seqid,
//                     void* ctx) override {
//     return fulcrum::GuardWrites(*role_, kWrites, in, out, fname, seqid,
//                                 [&] { return KvProcessor::dispatchCall(in, out, fname, seqid,
//                                                                        ctx); });
//   }
//
// Thread-safe (RoleState is; the protocols are the calling connection's own).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "fulcrum/role.h"

namespace apache::thrift::protocol {
class TProtocol;
}

namespace fulcrum {

// A function not annotated fulcrum.read.
struct WriteFunction {
  std::string_view name;
  bool oneway = false;
};

// Reads the rest of the call `fname` (its arguments) from `in` and, unless it is oneway,
// answers it with the NotMaster TApplicationException naming the master `role` knows. The
// call is not run; the refusal is counted (RoleState::writes_refused). Throws what the
// protocols throw (the server then drops the connection), as the stock processor does.
void RefuseNotMaster(RoleState& role, apache::thrift::protocol::TProtocol* in,
                     apache::thrift::protocol::TProtocol* out, const std::string& fname,
                     int32_t seqid, bool oneway);

// Runs `dispatch()` (the stock processor's dispatchCall) for reads and for writes this
// instance admits, holding the write admission until the write is done; refuses other writes.
template <class Dispatch>
bool GuardWrites(RoleState& role, std::span<const WriteFunction> writes,
                 apache::thrift::protocol::TProtocol* in, apache::thrift::protocol::TProtocol* out,
                 const std::string& fname, int32_t seqid, Dispatch&& dispatch) {
  const WriteFunction* write = nullptr;
  for (const WriteFunction& w : writes) {
    if (w.name == fname) {
      write = &w;
      break;
    }
  }
  // Reads, and names the service does not have (the stock processor answers those).
  if (write == nullptr) return dispatch();
  WriteGuard guard(role);
  if (guard.admitted()) return dispatch();
  RefuseNotMaster(role, in, out, fname, seqid, write->oneway);
  return true;
}

}  // namespace fulcrum
