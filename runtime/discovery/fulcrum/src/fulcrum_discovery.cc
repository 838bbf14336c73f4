#include "fulcrum/discovery/fulcrum.h"

#include <mutex>

#include "fulcrum/discovery/token_file.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"
#include "fulcrum_registrar.h"
#include "fulcrum_resolver.h"
#include "fulcrum_uri.h"

namespace fulcrum::registry_client {
namespace {

ConnectionOptions ToConnection(const FulcrumUri& uri) {
  ConnectionOptions c;
  c.host = uri.host;
  c.port = uri.port;
  c.tls_ca_file = uri.tls_ca_file;
  return c;
}

StatusOr<std::unique_ptr<Resolver>> MakeResolver(std::string_view rest) {
  StatusOr<FulcrumUri> uri = ParseFulcrumUri(rest);
  if (!uri.ok()) return uri.status();
  if (uri->service.empty()) {
    return Status::Error(
        StatusCode::kInvalidArgument,
        "fulcrum://" + std::string(rest) + ": no service (fulcrum://host:port/<service>)");
  }
  FulcrumResolverOptions options;
  options.connection = ToConnection(uri.value());
  options.service = uri->service;
  return std::unique_ptr<Resolver>(std::make_unique<FulcrumResolver>(options));
}

StatusOr<std::unique_ptr<Registrar>> MakeRegistrar(std::string_view rest) {
  StatusOr<FulcrumUri> uri = ParseFulcrumUri(rest);
  if (!uri.ok()) return uri.status();
  FulcrumRegistrarOptions options;
  options.connection = ToConnection(uri.value());
  if (!uri->token_file.empty()) {
    StatusOr<std::string> token = ReadTokenFile(uri->token_file);
    if (!token.ok()) return token.status();
    options.token = token.value();
  }
  return std::unique_ptr<Registrar>(std::make_unique<FulcrumRegistrar>(options));
}

}  // namespace
}  // namespace fulcrum::registry_client

namespace fulcrum {

Status RegisterFulcrumDiscovery() {
  static std::once_flag once;
  static Status result;
  std::call_once(once, [] {
    result = RegisterResolverScheme("fulcrum", &registry_client::MakeResolver);
    if (result.ok()) result = RegisterRegistrarScheme("fulcrum", &registry_client::MakeRegistrar);
  });
  return result;
}

}  // namespace fulcrum
