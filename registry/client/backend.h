// The fulcrum:// discovery backend: registers the "fulcrum" scheme for resolvers
// (fulcrum://host:port/<service>) and registrars (fulcrum://host:port). Call once at startup;
// afterwards only URIs say which backend is in use.
//
//   CHECK(fulcrum::registry::RegisterFulcrumBackend().ok());
//   auto resolver = fulcrum::CreateResolver("fulcrum://127.0.0.1:7000/calc");
//
// Thread-safe; calling it again is harmless.
#pragma once

#include "fulcrum/status.h"

namespace fulcrum::registry {

Status RegisterFulcrumBackend();

}  // namespace fulcrum::registry
