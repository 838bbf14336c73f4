#include "fulcrum/endpoint.h"

namespace fulcrum {

std::string Endpoint::Address() const {
  std::string out;
  const bool v6 = host.find(':') != std::string::npos;
  out.reserve(host.size() + 8);
  if (v6) out += '[';
  out += host;
  if (v6) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace fulcrum
