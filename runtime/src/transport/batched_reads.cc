#include "transport/batched_reads.h"

#include <algorithm>
#include <cstring>

namespace fulcrum::internal {

BatchedReads::BatchedReads(std::shared_ptr<apache::thrift::transport::TTransport> inner)
    : inner_(std::move(inner)), buffer_(kBuffer) {}

bool BatchedReads::Fill() {
  pos_ = 0;
  end_ = inner_->read(buffer_.data(), kBuffer);  // one recv(); 0 at EOF
  return end_ > 0;
}

bool BatchedReads::peek() { return pos_ < end_ || Fill(); }

uint32_t BatchedReads::read(uint8_t* buf, uint32_t len) {
  if (pos_ == end_) {
    // A large read (a big frame's body) goes straight to the caller's buffer.
    if (len >= kBuffer) return inner_->read(buf, len);
    if (!Fill()) return 0;
  }
  const uint32_t n = std::min(len, end_ - pos_);
  std::memcpy(buf, buffer_.data() + pos_, n);
  pos_ += n;
  return n;
}

}  // namespace fulcrum::internal
