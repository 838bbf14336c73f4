// ReadTokenFile: the bearer token a client of fulcrum-registry presents on calls that change
// state (fulcrum:// registrars, fulcrumctl). The daemon reads its own token the same way
// (registry/server/auth.h), so both sides agree on what a token file holds. A token is never
// taken from the command line, where `ps` shows it.
//
//   StatusOr<std::string> token = fulcrum::registry_client::ReadTokenFile("/etc/fulcrum/token");
//
// Thread-safe (no state).
#pragma once

#include <string>

#include "fulcrum/status.h"

namespace fulcrum::registry_client {

// The first line of the file, surrounding whitespace trimmed. A missing, unreadable or empty
// file is kInvalidArgument naming the path (never silently "no token").
StatusOr<std::string> ReadTokenFile(const std::string& path);

}  // namespace fulcrum::registry_client
