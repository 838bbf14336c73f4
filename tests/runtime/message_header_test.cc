// The seqid in a Thrift message header, read and replaced, against messages the stock
// protocols write.
#include "transport/message_header.h"

#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/protocol/TCompactProtocol.h>
#include <thrift/transport/TBufferTransports.h>

namespace fulcrum::internal {
namespace {

using apache::thrift::protocol::T_CALL;
using apache::thrift::transport::TMemoryBuffer;

// A message as `protocol` writes it: a header with `seqid`, then one string field.
std::string Message(Protocol protocol, int32_t seqid) {
  auto buffer = std::make_shared<TMemoryBuffer>();
  auto out = MakeProtocol(protocol, buffer);
  out->writeMessageBegin("echo", T_CALL, seqid);
  out->writeStructBegin("args");
  out->writeFieldBegin("message", apache::thrift::protocol::T_STRING, 1);
  out->writeString("payload");
  out->writeFieldEnd();
  out->writeFieldStop();
  out->writeStructEnd();
  out->writeMessageEnd();
  return buffer->getBufferAsString();
}

StatusOr<int32_t> Read(Protocol protocol, const std::string& bytes) {
  return ReadSeqId(protocol, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

class MessageHeaderTest : public ::testing::TestWithParam<Protocol> {};

TEST_P(MessageHeaderTest, ReplacingTheSeqIdGivesWhatTheProtocolWritesWithIt) {
  const Protocol p = GetParam();
  for (int32_t seqid : {1, 127, 128, 300, 16384, 1 << 28, INT32_MAX, -1}) {
    std::string out;
    ASSERT_TRUE(AppendWithSeqId(p, Message(p, 0), seqid, out));
    EXPECT_EQ(out, Message(p, seqid)) << seqid;
    StatusOr<int32_t> read = Read(p, out);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(*read, seqid);
  }
}

TEST_P(MessageHeaderTest, BytesThatAreNotAHeaderAreRefused) {
  const Protocol p = GetParam();
  std::string out = "kept";
  for (const std::string& bad : {std::string(), std::string("\xff\xff\xff\xff", 4),
                                 std::string("\x82\x21", 2), std::string(3, '\0')}) {
    EXPECT_FALSE(Read(p, bad).ok());
    EXPECT_FALSE(AppendWithSeqId(p, bad, 7, out));
  }
  EXPECT_EQ(out, "kept");  // nothing appended
  // Cut before the seqid: after the name in binary, after two bytes in compact.
  std::string truncated = Message(p, 300).substr(0, p == Protocol::kBinary ? 10 : 3);
  EXPECT_FALSE(Read(p, truncated).ok());
}

INSTANTIATE_TEST_SUITE_P(Protocols, MessageHeaderTest,
                         ::testing::Values(Protocol::kBinary, Protocol::kCompact),
                         [](const auto& info) { return std::string(ProtocolName(info.param)); });

}  // namespace
}  // namespace fulcrum::internal
