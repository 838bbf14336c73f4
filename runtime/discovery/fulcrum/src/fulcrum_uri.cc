#include "fulcrum_uri.h"

#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/resolver.h"

namespace fulcrum::registry_client {

StatusOr<FulcrumUri> ParseFulcrumUri(std::string_view rest) {
  auto bad = [&](const std::string& why) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "fulcrum://" + std::string(rest) + ": " + why);
  };
  StatusOr<DiscoveryUri> parts = SplitDiscoveryUri(rest);
  if (!parts.ok()) return bad(parts.status().message());
  FulcrumUri uri;
  uri.service = parts->service;
  if (parts->authority.empty()) return bad("no registry host:port");
  Status s = ParseRegistryAddress(parts->authority, &uri.host, &uri.port);
  if (!s.ok()) return bad(s.message());
  for (const auto& [key, value] : parts->params) {
    if (key == "token_file") {
      uri.token_file = value;
    } else if (key == "tls_ca_file") {
      uri.tls_ca_file = value;
    } else {
      return bad("unknown parameter '" + key + "' (token_file, tls_ca_file)");
    }
  }
  return uri;
}

}  // namespace fulcrum::registry_client
