// TokenAuth: who may change the registry. A bearer token read from a file (never from the
// command line, where `ps` shows it) and compared in constant time.
//
//   StatusOr<TokenAuth> auth = TokenAuth::FromFile(FLAGS_token_file);  // "" = open registry
//   if (!auth->Check(request_token)) ... refuse, say why, log who tried
//
// Thread-safe after construction (const).
#pragma once

#include <string>
#include <string_view>

#include "fulcrum/status.h"

namespace fulcrum::registry {

class TokenAuth {
 public:
  // No token: every call is allowed (for tests and trusted networks; the daemon logs a
  // warning).
  TokenAuth() = default;
  static TokenAuth WithToken(std::string token) { return TokenAuth(std::move(token)); }

  // Reads the token from `path` as clients do (fulcrum/discovery/token_file.h: the first
  // line, surrounding whitespace trimmed). An empty path means "no auth". A missing, unreadable
  // or empty file is an error (never silently open).
  static StatusOr<TokenAuth> FromFile(const std::string& path);

  bool enabled() const { return !token_.empty(); }
  // True when auth is off or `presented` equals the token. The time taken depends only on
  // the lengths, never on where the bytes differ.
  bool Check(std::string_view presented) const;

 private:
  explicit TokenAuth(std::string token) : token_(std::move(token)) {}
  std::string token_;
};

// Constant-time equality (exposed for tests).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace fulcrum::registry
