#include "etcd_uri.h"

#include <charconv>
#include <fstream>
#include <iterator>

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
  StatusOr<DiscoveryUri> parts = SplitDiscoveryUri(rest);
  if (!parts.ok()) return bad(parts.status().message());
  EtcdUri uri;
  uri.service = parts->service;
  const std::string_view authority = parts->authority;
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
  std::string user;
  std::string password_file;
  for (const auto& [key, value] : parts->params) {
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
    } else if (key == "user") {
      if (value.empty()) return bad("user is empty");
      user = std::string(value);
    } else if (key == "password_file") {
      if (value.empty()) return bad("password_file is empty");
      password_file = std::string(value);
    } else if (key == "tls_ca_file" || key == "tls_cert_file" || key == "tls_key_file") {
      if (value.empty()) return bad(key + " is empty");
      if (!uri.tls) uri.tls.emplace();
      std::string& field = key == "tls_ca_file"     ? uri.tls->ca_file
                           : key == "tls_cert_file" ? uri.tls->cert_file
                                                    : uri.tls->key_file;
      field = std::string(value);
      if (!std::ifstream(field).is_open()) return bad("cannot open " + key + " " + field);
    } else {
      return bad("unknown parameter '" + key + "' (" + (resolver ? "prefix" : "prefix, ttl_s") +
                 ", user, password_file)");
    }
  }
  if (uri.tls && uri.tls->ca_file.empty()) {
    return bad("a client certificate needs tls_ca_file (TLS to etcd)");
  }
  if (uri.tls && uri.tls->cert_file.empty() != uri.tls->key_file.empty()) {
    return bad("a client certificate takes both tls_cert_file and tls_key_file");
  }
  if (user.empty() != password_file.empty()) {
    return bad("etcd authentication takes both user and password_file");
  }
  if (!user.empty()) {
    std::ifstream in(password_file, std::ios::binary);
    if (!in.is_open()) return bad("cannot open password_file " + password_file);
    std::string password((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return bad("cannot read password_file " + password_file);
    if (!password.empty() && password.back() == '\n') password.pop_back();
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return bad("password_file " + password_file + " is empty");
    uri.credentials = EtcdCredentials{user, std::move(password)};
  }
  return uri;
}

}  // namespace fulcrum::etcd
