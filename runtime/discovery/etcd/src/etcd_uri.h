// EtcdUri: the part of an etcd:// URI after the scheme.
//
//   etcd://10.0.0.1:2379,10.0.0.2:2379/calc?prefix=/fulcrum          (resolver)
//   etcd://10.0.0.1:2379,10.0.0.2:2379?prefix=/fulcrum&ttl_s=3        (registrar)
//   etcd://10.0.0.1:2379/calc?user=fulcrum&password_file=/etc/fulcrum/etcd.pw   (etcd auth on)
//
// The authority lists etcd's client endpoints (tried in order, moving on when one fails); the
// path is the service (resolvers only); query parameters: prefix (default /fulcrum), ttl_s
// (registrars only, default 3: the lease TTL asked for), user and password_file (etcd
// authentication: the password is read from the file when the URI is parsed, one trailing
// newline dropped; never written in the URI itself, which ends up in flags and logs), and
// tls_ca_file (https to every endpoint, etcd's certificate verified against that CA and the
// endpoint's host name or IP) with optionally tls_cert_file and tls_key_file (a client
// certificate).
//
// Plain value; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/status.h"

namespace fulcrum::etcd {

struct EtcdAddress {
  std::string host;
  uint16_t port = 0;
  // "host:port" ("[v6]:port").
  std::string ToString() const;
};

// An etcd user's name and password (etcd's authentication: /v3/auth/authenticate gives a token
// that every later request carries).
struct EtcdCredentials {
  std::string user;
  std::string password;
};

// TLS to etcd's client port (https): the CA that signed etcd's certificate, and optionally a
// client certificate and key (etcd started with --client-cert-auth). PEM files.
struct EtcdTls {
  std::string ca_file;
  std::string cert_file;  // empty: no client certificate
  std::string key_file;
};

struct EtcdUri {
  std::vector<EtcdAddress> endpoints;
  std::optional<EtcdCredentials> credentials;  // none: etcd's auth is off
  std::optional<EtcdTls> tls;                  // none: plain http
  std::string service;
  std::string prefix = "/fulcrum";  // no trailing '/'
  int ttl_s = 3;
};

enum class EtcdUriKind { kResolver, kRegistrar };

// kInvalidArgument naming the URI and what is wrong with it (a password file that cannot be
// read included).
StatusOr<EtcdUri> ParseEtcdUri(std::string_view rest_of_uri, EtcdUriKind kind);

}  // namespace fulcrum::etcd
