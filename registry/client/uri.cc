#include "client/uri.h"

#include "transport.h"

namespace fulcrum::registry {

StatusOr<FulcrumUri> ParseFulcrumUri(std::string_view rest) {
  auto bad = [&](const std::string& why) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "fulcrum://" + std::string(rest) + ": " + why);
  };
  FulcrumUri uri;
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    uri.service = std::string(rest.substr(slash + 1));
    if (uri.service.find('/') != std::string::npos) return bad("service name contains '/'");
  }
  if (authority.empty()) return bad("no registry host:port");
  Status s = ParseRegistryAddress(std::string(authority), &uri.host, &uri.port);
  if (!s.ok()) return bad(s.message());
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos)
      return bad("query parameter '" + std::string(kv) + "' has no '='");
    const std::string key(kv.substr(0, eq));
    const std::string value(kv.substr(eq + 1));
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

}  // namespace fulcrum::registry
