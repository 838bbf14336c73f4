#include "etcd/uri.h"

#include <charconv>

#include "fulcrum/resolver.h"

namespace fulcrum::etcd {

std::string EtcdAddress::ToString() const {
  const std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

StatusOr<EtcdUri> ParseEtcdUri(std::string_view rest, EtcdUriKind kind) {
  const std::string whole(rest);
  auto bad = [&](const std::string& why) {
    return Status::Error(StatusCode::kInvalidArgument, "etcd://" + whole + ": " + why);
  };
  const bool resolver = kind == EtcdUriKind::kResolver;
  EtcdUri uri;
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
  if (resolver && uri.service.empty()) {
    return bad("no service (etcd://host:port[,host:port...]/<service>)");
  }
  if (!resolver && !uri.service.empty()) {
    return bad("a registrar URI names no service (the instance does): etcd://host:port[,...]");
  }
  if (authority.empty()) return bad("no etcd host:port");
  for (size_t start = 0;;) {
    const size_t comma = authority.find(',', start);
    const std::string_view one = authority.substr(start, comma - start);
    StatusOr<Endpoint> e = ParseHostPort(one);
    if (!e.ok()) return bad("bad etcd address '" + std::string(one) + "': " + e.status().message());
    uri.endpoints.push_back({e->host, e->port});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos) {
      return bad("query parameter '" + std::string(kv) + "' has no '='");
    }
    const std::string key(kv.substr(0, eq));
    const std::string_view value = kv.substr(eq + 1);
    if (key == "prefix") {
      if (value.empty() || value.front() != '/') return bad("prefix must start with '/'");
      uri.prefix = std::string(value);
      while (uri.prefix.size() > 1 && uri.prefix.back() == '/') uri.prefix.pop_back();
      if (uri.prefix == "/") uri.prefix.clear();
    } else if (key == "ttl_s" && !resolver) {
      int ttl = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), ttl);
      if (ec != std::errc() || end != value.data() + value.size() || ttl < 1 || ttl > 3600) {
        return bad("ttl_s must be a whole number of seconds in [1, 3600], not '" +
                   std::string(value) + "'");
      }
      uri.ttl_s = ttl;
    } else {
      return bad("unknown parameter '" + key + "' (" + (resolver ? "prefix" : "prefix, ttl_s") +
                 ")");
    }
  }
  return uri;
}

}  // namespace fulcrum::etcd
