// FulcrumUri: the part of a fulcrum:// URI after the scheme.
//
//   fulcrum://127.0.0.1:7000/calc?token_file=/etc/fulcrum/token&tls_ca_file=/etc/fulcrum/ca.pem
//
// host:port is the registry; the path is the service (resolvers need it, registrars take it
// from the instance); query parameters: token_file, tls_ca_file.
//
// Plain value; thread-compatible.
#pragma once

#include <string>
#include <string_view>

#include "fulcrum/status.h"

namespace fulcrum::registry_client {

struct FulcrumUri {
  std::string host;
  int port = 0;
  std::string service;
  std::string token_file;
  std::string tls_ca_file;
};

// kInvalidArgument naming what is wrong.
StatusOr<FulcrumUri> ParseFulcrumUri(std::string_view rest_of_uri);

}  // namespace fulcrum::registry_client
