// The etcd:// discovery library (Fulcrum::etcd): resolvers and registrars over etcd v3 (its
// JSON gateway). Call RegisterEtcdDiscovery() once at startup; afterwards only URIs say which
// discovery service is in use:
//
//   etcd://h1:p1[,h2:p2...]/<service>[?prefix=/fulcrum]              resolver (Channel::Create)
//   etcd://h1:p1[,h2:p2...][?prefix=/fulcrum&ttl_s=3]                registrar (ServeOptions)
//
//   CHECK(fulcrum::RegisterEtcdDiscovery().ok());
//   auto resolver = fulcrum::CreateResolver("etcd://127.0.0.1:2379/calc");
//
// Registration is an explicit call, not a static initialiser, so that linking the library
// decides nothing by itself; a URI with the scheme before the call fails with an error that
// names this function.
//
// Thread-safe; calling it again is harmless.
#pragma once

#include "fulcrum/status.h"

namespace fulcrum {

Status RegisterEtcdDiscovery();

}  // namespace fulcrum
