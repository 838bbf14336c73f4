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
