// Wire protocol choice shared by clients and servers. Both ends must agree.
#pragma once

#include <memory>
#include <string_view>

#include <thrift/protocol/TProtocol.h>

#include "fulcrum/status.h"

namespace fulcrum {

enum class Protocol { kBinary, kCompact };

StatusOr<Protocol> ParseProtocol(std::string_view name);  // "binary" | "compact"
const char* ProtocolName(Protocol p);

// A client-side protocol of kind `p` over `transport` (for hand-written Thrift clients on a
// Fulcrum connection; servers use ServerProtocolFactory, fulcrum/server_transport.h).
std::shared_ptr<apache::thrift::protocol::TProtocol> MakeProtocol(
    Protocol p, std::shared_ptr<apache::thrift::transport::TTransport> transport);

}  // namespace fulcrum
