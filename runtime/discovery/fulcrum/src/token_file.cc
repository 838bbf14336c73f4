#include "fulcrum/discovery/token_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace fulcrum::registry_client {

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

}  // namespace fulcrum::registry_client
