#include "call/async_attempt.h"

#include <memory>
#include <thread>

#include <thrift/transport/TBufferTransports.h>

#include "transport/connection_pool.h"

namespace fulcrum::internal {

using apache::thrift::protocol::TProtocol;
using apache::thrift::transport::TMemoryBuffer;

namespace {

// This thread's protocols over one memory buffer, for writing requests or reading replies.
struct MemoryProtocols {
  std::shared_ptr<TMemoryBuffer> buffer = std::make_shared<TMemoryBuffer>();
  std::shared_ptr<TProtocol> binary = MakeProtocol(Protocol::kBinary, buffer);
  std::shared_ptr<TProtocol> compact = MakeProtocol(Protocol::kCompact, buffer);

  const std::shared_ptr<TProtocol>& For(Protocol p) const {
    return p == Protocol::kCompact ? compact : binary;
  }
};

MemoryProtocols& Writer() {
  thread_local MemoryProtocols w;
  return w;
}

// Waits for one pipelined request's outcome.
class Waiter final : public PipelineRequest {
 public:
  Waiter(AsyncReceiver& receiver, Protocol protocol, bool master_slave)
      : receiver_(receiver), protocol_(protocol), master_slave_(master_slave) {}

  void OnReply(PipelineResult& result) override {
    AttemptOutcome out = OutcomeOf(result, receiver_, protocol_, master_slave_);
    std::lock_guard<std::mutex> lock(mu_);
    out_ = std::move(out);
    done_ = true;
    cv_.notify_one();  // under the lock: the waiter destroys this object once it sees done_
  }

  AttemptOutcome Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return std::move(out_);
  }

 private:
  AsyncReceiver& receiver_;
  const Protocol protocol_;
  const bool master_slave_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  AttemptOutcome out_;
};

}  // namespace

std::shared_ptr<TProtocol> RequestProtocol(Protocol p) {
  MemoryProtocols& w = Writer();
  w.buffer->resetBuffer();
  return w.For(p);
}

std::string TakeRequest() {
  MemoryProtocols& w = Writer();
  std::string bytes = w.buffer->getBufferAsString();
  w.buffer->resetBuffer();
  return bytes;
}

AttemptOutcome OutcomeOf(const PipelineResult& result, AsyncReceiver& receiver, Protocol protocol,
                         bool master_slave) {
  AttemptOutcome out;
  out.connected = result.connected;
  out.sent = result.sent;
  if (result.code != StatusCode::kOk) {
    out.code = result.code;
    out.detail = result.detail;
    return out;
  }
  thread_local MemoryProtocols reader;
  reader.buffer->resetBuffer(const_cast<uint8_t*>(result.data), static_cast<uint32_t>(result.size),
                             TMemoryBuffer::OBSERVE);
  try {
    receiver.Read(*reader.For(protocol));
  } catch (...) {
    // A reply cut short inside its frame reads as a transport error: it is the bytes' fault.
    SortAttemptException(out, master_slave);
    if (out.code == StatusCode::kTransport) out.code = StatusCode::kProtocol;
  }
  reader.buffer->resetBuffer();
  return out;
}

AttemptOutcome PipelinedAttempt::Run(const Backend& backend, TimePoint deadline) {
  if (cancelled_.load(std::memory_order_acquire)) {
    AttemptOutcome out;
    out.code = StatusCode::kResourceExhausted;
    out.detail = "cancelled by the caller";
    return out;
  }
  Waiter waiter(receiver_, protocol_, master_slave_);
  backend.pool->pipeline().Send(request_, deadline, &waiter);
  return waiter.Wait();
}

RetryLane& RetryLane::Instance() {
  static RetryLane* const lane = new RetryLane();  // never destroyed (see the header)
  return *lane;
}

RetryLane::RetryLane() {
  for (int i = 0; i < kThreads; ++i) std::thread([this] { Work(); }).detach();
}

void RetryLane::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

void RetryLane::Work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return !tasks_.empty(); });
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();
  }
}

}  // namespace fulcrum::internal
