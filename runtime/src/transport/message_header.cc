#include "transport/message_header.h"

namespace fulcrum::internal {

namespace {

constexpr uint32_t kBinaryVersionMask = 0xffff0000;
constexpr uint32_t kBinaryVersion1 = 0x80010000;
constexpr uint8_t kCompactProtocolId = 0x82;
constexpr uint8_t kCompactVersion = 1;

uint32_t ReadBE32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

void AppendBE32(uint32_t v, std::string& out) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  out.append(b, 4);
}

// Where the binary header's seqid starts, or npos.
size_t BinarySeqIdOffset(const uint8_t* p, size_t size) {
  if (size < 4) return std::string::npos;
  const uint32_t first = ReadBE32(p);
  if ((first & 0x80000000u) != 0) {  // strict: version and type, then the name
    if ((first & kBinaryVersionMask) != kBinaryVersion1 || size < 8) return std::string::npos;
    const uint32_t len = ReadBE32(p + 4);
    if (len > size || 8 + size_t{len} + 4 > size) return std::string::npos;
    return 8 + size_t{len};
  }
  // Old style: the name, then a type byte.
  if (size_t{first} + 4 + 1 + 4 > size) return std::string::npos;
  return 4 + size_t{first} + 1;
}

// The compact header's varint seqid: its offset and length, or false.
bool CompactSeqId(const uint8_t* p, size_t size, size_t* offset, size_t* len, uint32_t* value) {
  if (size < 3 || p[0] != kCompactProtocolId || (p[1] & 0x1f) != kCompactVersion) return false;
  uint32_t v = 0;
  for (size_t i = 2, shift = 0; i < size && shift < 35; ++i, shift += 7) {
    v |= uint32_t{p[i] & 0x7fu} << shift;
    if ((p[i] & 0x80) == 0) {
      *offset = 2;
      *len = i - 1;
      *value = v;
      return true;
    }
  }
  return false;
}

}  // namespace

bool AppendWithSeqId(Protocol protocol, std::string_view message, int32_t seqid, std::string& out) {
  const auto* p = reinterpret_cast<const uint8_t*>(message.data());
  if (protocol == Protocol::kBinary) {
    const size_t at = BinarySeqIdOffset(p, message.size());
    if (at == std::string::npos) return false;
    out.append(message.data(), at);
    AppendBE32(static_cast<uint32_t>(seqid), out);
    out.append(message.data() + at + 4, message.size() - at - 4);
    return true;
  }
  size_t at, len;
  uint32_t old;
  if (!CompactSeqId(p, message.size(), &at, &len, &old)) return false;
  out.append(message.data(), at);
  for (uint32_t v = static_cast<uint32_t>(seqid);; v >>= 7) {  // varint, unsigned
    if (v < 0x80) {
      out.push_back(static_cast<char>(v));
      break;
    }
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
  }
  out.append(message.data() + at + len, message.size() - at - len);
  return true;
}

StatusOr<int32_t> ReadSeqId(Protocol protocol, const uint8_t* data, size_t size) {
  if (protocol == Protocol::kBinary) {
    const size_t at = BinarySeqIdOffset(data, size);
    if (at != std::string::npos) return static_cast<int32_t>(ReadBE32(data + at));
  } else {
    size_t at, len;
    uint32_t v;
    if (CompactSeqId(data, size, &at, &len, &v)) return static_cast<int32_t>(v);
  }
  return Status::Error(StatusCode::kProtocol, std::string("the reply is not a Thrift ") +
                                                  ProtocolName(protocol) + " message");
}

}  // namespace fulcrum::internal
