// The seqid of a Thrift message, read from and written into its header, for the binary and
// compact protocols. A pipelined connection (pipeline.h) numbers its requests itself and
// matches each reply to its request by it.
//
//   std::string framed;
//   AppendWithSeqId(Protocol::kBinary, message, 42, framed);   // message as a stock client wrote
//   it StatusOr<int32_t> id = ReadSeqId(Protocol::kBinary, reply.data(), reply.size());
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fulcrum/protocol.h"
#include "fulcrum/status.h"

namespace fulcrum::internal {

// Appends `message` (one whole message, unframed) to `out` with its seqid replaced by `seqid`.
// False when `message` does not start with a header of `protocol` (nothing is appended).
bool AppendWithSeqId(Protocol protocol, std::string_view message, int32_t seqid, std::string& out);

// The seqid in the header of the message in [data, data + size); an error when the bytes are
// not a header of `protocol`.
StatusOr<int32_t> ReadSeqId(Protocol protocol, const uint8_t* data, size_t size);

}  // namespace fulcrum::internal
