#include "server/auth.h"

#include <algorithm>

#include "fulcrum/discovery/token_file.h"

namespace fulcrum::registry {

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Walk the longer input fully so the time depends on the lengths only.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  // Keep the compiler from short-circuiting the loop.
  volatile unsigned char result = diff;
  return result == 0;
}

StatusOr<TokenAuth> TokenAuth::FromFile(const std::string& path) {
  if (path.empty()) return TokenAuth();
  StatusOr<std::string> token = registry_client::ReadTokenFile(path);
  if (!token.ok()) return token.status();
  return TokenAuth(std::move(token).value());
}

bool TokenAuth::Check(std::string_view presented) const {
  if (token_.empty()) return true;
  return ConstantTimeEquals(token_, presented);
}

}  // namespace fulcrum::registry
