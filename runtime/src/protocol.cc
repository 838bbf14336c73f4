#include "fulcrum/protocol.h"

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>

namespace fulcrum {

using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::protocol::TCompactProtocol;

StatusOr<Protocol> ParseProtocol(std::string_view name) {
  if (name == "binary") return Protocol::kBinary;
  if (name == "compact") return Protocol::kCompact;
  return Status::Error(StatusCode::kInvalidArgument,
                       "unknown protocol '" + std::string(name) + "' (want binary or compact)");
}

const char* ProtocolName(Protocol p) { return p == Protocol::kBinary ? "binary" : "compact"; }

std::shared_ptr<apache::thrift::protocol::TProtocol> MakeProtocol(
    Protocol p, std::shared_ptr<apache::thrift::transport::TTransport> transport) {
  if (p == Protocol::kCompact) return std::make_shared<TCompactProtocol>(std::move(transport));
  return std::make_shared<TBinaryProtocol>(std::move(transport));
}

}  // namespace fulcrum
