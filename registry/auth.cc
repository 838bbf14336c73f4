#include "auth.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

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

StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "cannot read token file " + path + ": " + std::strerror(errno));
  }
  std::string line;
  std::getline(in, line);
  const char* ws = " \t\r\n";
  const size_t begin = line.find_first_not_of(ws);
  if (begin == std::string::npos) {
    return Status::Error(StatusCode::kInvalidArgument, "token file " + path + " is empty");
  }
  const size_t end = line.find_last_not_of(ws);
  return line.substr(begin, end - begin + 1);
}

StatusOr<TokenAuth> TokenAuth::FromFile(const std::string& path) {
  if (path.empty()) return TokenAuth();
  StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) return token.status();
  return TokenAuth(std::move(token).value());
}

bool TokenAuth::Check(std::string_view presented) const {
  if (token_.empty()) return true;
  return ConstantTimeEquals(token_, presented);
}

}  // namespace fulcrum::registry
