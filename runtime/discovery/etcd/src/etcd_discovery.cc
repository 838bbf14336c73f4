#include "fulcrum/discovery/etcd.h"

#include <mutex>

#include "etcd_registrar.h"
#include "etcd_resolver.h"
#include "etcd_uri.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"

namespace fulcrum::etcd {
namespace {

StatusOr<std::unique_ptr<Resolver>> MakeResolver(std::string_view rest) {
  StatusOr<EtcdUri> uri = ParseEtcdUri(rest, EtcdUriKind::kResolver);
  if (!uri.ok()) return uri.status();
  EtcdResolverOptions options;
  options.endpoints = uri->endpoints;
  options.service = uri->service;
  options.prefix = uri->prefix;
  options.credentials = uri->credentials;
  options.tls = uri->tls;
  return std::unique_ptr<Resolver>(std::make_unique<EtcdResolver>(options));
}

StatusOr<std::unique_ptr<Registrar>> MakeRegistrar(std::string_view rest) {
  StatusOr<EtcdUri> uri = ParseEtcdUri(rest, EtcdUriKind::kRegistrar);
  if (!uri.ok()) return uri.status();
  EtcdRegistrarOptions options;
  options.endpoints = uri->endpoints;
  options.prefix = uri->prefix;
  options.ttl_s = uri->ttl_s;
  options.credentials = uri->credentials;
  options.tls = uri->tls;
  return std::unique_ptr<Registrar>(std::make_unique<EtcdRegistrar>(options));
}

}  // namespace
}  // namespace fulcrum::etcd

namespace fulcrum {

Status RegisterEtcdDiscovery() {
  static std::once_flag once;
  static Status result;
  std::call_once(once, [] {
    result = RegisterResolverScheme("etcd", &etcd::MakeResolver);
    if (result.ok()) result = RegisterRegistrarScheme("etcd", &etcd::MakeRegistrar);
  });
  return result;
}

}  // namespace fulcrum
