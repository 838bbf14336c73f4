// The fulcrum:// discovery library (Fulcrum::fulcrum): resolvers and registrars that talk to
// fulcrum-registry. Call RegisterFulcrumDiscovery() once at startup; afterwards only URIs say
// which discovery service is in use:
//
//   fulcrum://host:port/<service>[?tls_ca_file=F]                    resolver (Channel::Create)
//   fulcrum://host:port[?token_file=F&tls_ca_file=F]                 registrar (ServeOptions)
//
//   CHECK(fulcrum::RegisterFulcrumDiscovery().ok());
//   auto resolver = fulcrum::CreateResolver("fulcrum://127.0.0.1:7000/calc");
//
// Registration is an explicit call, not a static initialiser, so that linking the library
// decides nothing by itself; a URI with the scheme before the call fails with an error that
// names this function.
//
// Thread-safe; calling it again is harmless.
#pragma once

#include "fulcrum/status.h"

namespace fulcrum {

Status RegisterFulcrumDiscovery();

}  // namespace fulcrum
