// BatchedReads: a threaded server's input side reads as much as has arrived (up to 64 KiB) in
// one recv() and hands out frames from that, instead of a recv() for each frame's length, one
// for its body and a peek() before each request. A pipelining client's requests then cost the
// server one recv() per batch; a lone request one recv() instead of three.
//
//   auto in = std::make_shared<BatchedReadsFramedTransportFactory>(max_frame_size);
//   TThreadedServer(processor, socket, in, out_factory, protocol, protocol);
//
// Only the input side: replies are written by the (separate) output transport as before.
// Thread-compatible, like every Thrift transport.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <thrift/transport/TVirtualTransport.h>

#include "fulcrum/framed_transport.h"

namespace fulcrum::internal {

class BatchedReads final : public apache::thrift::transport::TVirtualTransport<BatchedReads> {
 public:
  static constexpr uint32_t kBuffer = 64 * 1024;

  explicit BatchedReads(std::shared_ptr<apache::thrift::transport::TTransport> inner);

  bool isOpen() const override { return inner_->isOpen(); }
  // Waits for bytes (reading them into the buffer): false at EOF.
  bool peek() override;
  void open() override { inner_->open(); }
  void close() override { inner_->close(); }

  uint32_t read(uint8_t* buf, uint32_t len);
  void write(const uint8_t* buf, uint32_t len) { inner_->write(buf, len); }
  void flush() override { inner_->flush(); }

 private:
  // One read of the inner transport into the empty buffer; false at EOF.
  bool Fill();

  std::shared_ptr<apache::thrift::transport::TTransport> inner_;
  std::vector<uint8_t> buffer_;
  uint32_t pos_ = 0;
  uint32_t end_ = 0;
};

// FramedTransport (fulcrum/framed_transport.h) over BatchedReads over the accepted socket.
class BatchedReadsFramedTransportFactory final
    : public apache::thrift::transport::TTransportFactory {
 public:
  explicit BatchedReadsFramedTransportFactory(uint32_t max_frame_size) : framed_(max_frame_size) {}
  std::shared_ptr<apache::thrift::transport::TTransport> getTransport(
      std::shared_ptr<apache::thrift::transport::TTransport> inner) override {
    return framed_.getTransport(std::make_shared<BatchedReads>(std::move(inner)));
  }

 private:
  FramedTransportFactory framed_;
};

}  // namespace fulcrum::internal
