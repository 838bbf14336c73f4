#include "fulcrum/framed_transport.h"

#include <algorithm>
#include <climits>

#include <thrift/TConfiguration.h>

namespace fulcrum {

using apache::thrift::TConfiguration;
using apache::thrift::transport::TTransport;

uint32_t FramedTransport::readEnd() {
  uint32_t bytes = TFramedTransport::readEnd();
  // The fix: each message gets the whole max-message-size budget again (see the header).
  resetConsumedMessageSize();
  return bytes;
}

std::shared_ptr<TTransport> FramedTransportFactory::getTransport(
    std::shared_ptr<TTransport> inner) {
  // A message may be as large as a frame: raise the per-message budget to match when the
  // frame limit is above Thrift's 100 MiB default (TTransport makes a config object anyway).
  const int frame = static_cast<int>(std::min<uint32_t>(max_frame_size_, INT_MAX));
  auto config = std::make_shared<TConfiguration>(
      std::max(frame, int{TConfiguration::DEFAULT_MAX_MESSAGE_SIZE}), frame);
  auto transport = std::make_shared<FramedTransport>(std::move(inner), std::move(config));
  transport->setMaxFrameSize(max_frame_size_);
  return transport;
}

}  // namespace fulcrum
