// FramedTransport: TFramedTransport without the Thrift 0.17 100 MiB-per-connection limit.
//
// Thrift 0.17 counts every string/binary byte read against TConfiguration's max message size
// and resets the count only in flush(). A server's input transport is never flushed, so after
// 100 MiB in total a long-lived connection is closed as if the peer had sent too much (fixed
// upstream in 0.23). Resetting the count at the end of every message restores the intended
// per-message limit. Use these factories on both ends.
//
// Thread-compatible, like every Thrift transport.
#pragma once

#include <memory>

#include <thrift/transport/TBufferTransports.h>

namespace fulcrum {

class FramedTransport : public apache::thrift::transport::TFramedTransport {
 public:
  using TFramedTransport::TFramedTransport;
  uint32_t readEnd() override;
};

// The client end of a pooled connection. It also counts the two-way requests it has sent
// whose reply has not yet been read to its end: a connection returned with a reply still on
// its way (an attempt cut short by an exception between send and receive) must never serve
// the next call, which would otherwise read that reply as its own (Thrift 0.17's generated
// clients do not check sequence ids).
class ClientFramedTransport : public FramedTransport {
 public:
  using FramedTransport::FramedTransport;
  void flush() override;
  uint32_t readEnd() override;
  int awaiting_replies() const { return awaiting_replies_; }
  // A reply owed was read past this transport, straight from the socket (the pool drains a
  // hedge loser's reply that way).
  void ReplyDrained() {
    if (awaiting_replies_ > 0) --awaiting_replies_;
  }

 private:
  int awaiting_replies_ = 0;
};

// A ClientFramedTransport over `inner`, configured as FramedTransportFactory does.
std::shared_ptr<ClientFramedTransport> MakeClientFramedTransport(
    std::shared_ptr<apache::thrift::transport::TTransport> inner, uint32_t max_frame_size);

class FramedTransportFactory : public apache::thrift::transport::TTransportFactory {
 public:
  explicit FramedTransportFactory(uint32_t max_frame_size = kDefaultMaxFrameSize)
      : max_frame_size_(max_frame_size) {}
  std::shared_ptr<apache::thrift::transport::TTransport> getTransport(
      std::shared_ptr<apache::thrift::transport::TTransport> inner) override;

  static constexpr uint32_t kDefaultMaxFrameSize = 64u << 20;

 private:
  uint32_t max_frame_size_;
};

}  // namespace fulcrum
