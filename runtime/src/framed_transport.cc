#include "fulcrum/framed_transport.h"

#include <algorithm>
#include <climits>

#include <thrift/TConfiguration.h>

namespace fulcrum {

using apache::thrift::TConfiguration;
using apache::thrift::transport::TTransport;

uint32_t FramedTransport::readEnd() {
  uint32_t bytes = TFramedTransport::readEnd();
  // Each message gets the whole max-message-size budget again (see the header).
  resetConsumedMessageSize();
  return bytes;
}

namespace {

// Message types as both binary (strict) and compact protocols put them on the wire.
constexpr uint8_t kOneway = 4;

// The type of the message starting at `frame` (`size` bytes): binary's strict header is
// 0x80 0x01 0x00 type, compact's 0x82 then type in the top three bits. 0 when neither.
uint8_t MessageType(const uint8_t* frame, size_t size) {
  if (size >= 4 && frame[0] == 0x80 && frame[1] == 0x01) return frame[3] & 0x07;
  if (size >= 2 && frame[0] == 0x82) return static_cast<uint8_t>(frame[1] >> 5) & 0x07;
  return 0;
}

template <class T>
std::shared_ptr<T> MakeFramed(std::shared_ptr<TTransport> inner, uint32_t max_frame_size) {
  // A message may be as large as a frame: raise the per-message budget to match when the
  // frame limit is above Thrift's 100 MiB default (TTransport makes a config object anyway).
  const int frame = static_cast<int>(std::min<uint32_t>(max_frame_size, INT_MAX));
  auto config = std::make_shared<TConfiguration>(
      std::max(frame, int{TConfiguration::DEFAULT_MAX_MESSAGE_SIZE}), frame);
  auto transport = std::make_shared<T>(std::move(inner), std::move(config));
  transport->setMaxFrameSize(max_frame_size);
  return transport;
}

}  // namespace

void ClientFramedTransport::flush() {
  constexpr size_t kSizePrefix = 4;  // TFramedTransport keeps the frame size there
  const uint8_t* frame = wBuf_.get() + kSizePrefix;
  if (wBase_ > frame) {
    const uint8_t type = MessageType(frame, static_cast<size_t>(wBase_ - frame));
    // Counted before the bytes leave: a flush that fails part-way leaves a reply owed, and the
    // connection is then not reused. Anything not recognisably oneway is taken to want one.
    if (type != kOneway) ++awaiting_replies_;
  }
  FramedTransport::flush();
}

uint32_t ClientFramedTransport::readEnd() {
  if (awaiting_replies_ > 0) --awaiting_replies_;
  return FramedTransport::readEnd();
}

std::shared_ptr<ClientFramedTransport> MakeClientFramedTransport(std::shared_ptr<TTransport> inner,
                                                                 uint32_t max_frame_size) {
  return MakeFramed<ClientFramedTransport>(std::move(inner), max_frame_size);
}

std::shared_ptr<TTransport> FramedTransportFactory::getTransport(
    std::shared_ptr<TTransport> inner) {
  return MakeFramed<FramedTransport>(std::move(inner), max_frame_size_);
}

}  // namespace fulcrum
