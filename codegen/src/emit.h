// Emit: writes the C++ for every service of a loaded IDL.
//
//   Output out = Emit(idl, "calculator.thrift");
//   // out.header -> calculator_fulcrum.h, out.source -> calculator_fulcrum.cpp
//
// Per service S (in namespace <cpp namespace>::fulcrum_gen, so no name can collide with what
// the stock compiler generates): SMethods (one constexpr MethodTraits per function),
// SChannelOptions(), SBalancedClient and SServer. Throws GenError for an IDL whose names
// would make the output ambiguous. Thread-safe (a pure function of the IDL).
#pragma once

#include <string>

#include "idl.h"

namespace fulcrum::codegen {

struct Output {
  std::string header;
  std::string source;
};

// `idl_name` is what the do-not-edit line names (a file name, not a path: the output must not
// depend on where the build tree is).
Output Emit(const Idl& idl, const std::string& idl_name);

}  // namespace fulcrum::codegen
