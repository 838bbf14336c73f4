// The etcd:// discovery backend: registers the "etcd" scheme for resolvers
// (etcd://h1:p1[,h2:p2...]/<service>[?prefix=/fulcrum]) and registrars
// (etcd://h1:p1[,h2:p2...][?prefix=/fulcrum&ttl_s=3]). Call once at startup; afterwards only
// URIs say which backend is in use.
//
//   CHECK(fulcrum::etcd::RegisterEtcdBackend().ok());
//   auto resolver = fulcrum::CreateResolver("etcd://127.0.0.1:2379/calc");
//
// Thread-safe; calling it again is harmless.
#pragma once

#include "fulcrum/status.h"

namespace fulcrum::etcd {

Status RegisterEtcdBackend();

}  // namespace fulcrum::etcd
