// The pieces of an asynchronous call (Channel::CallAsync) apart from its policy: what a reply
// on a pipelined connection comes to as an attempt, a blocking runner over the pipeline for
// the attempts after the first, and the lane those run on.
//
//   AttemptOutcome out = OutcomeOf(result, receiver, protocol, master_slave);
//   PipelinedAttempt runner(request, receiver, protocol, master_slave, &cancelled);
//   RetryLane::Instance().Post([call] { ... loop.Run(plan, route, runner, record, &resumed); });
//
// An asynchronous call's first attempt never blocks a thread: it is sent from the caller's
// thread and its reply read on the event thread (transport/io_loop.h). When it succeeds the
// call ends there. When it fails, the rest of the call (the attempt loop's retries, backoff,
// waits for a master) runs on the retry lane, a few threads of the process, with attempts that
// wait for their replies: the same loop, so the same rules as a synchronous call.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>

#include "call/attempt_loop.h"
#include "fulcrum/channel.h"
#include "transport/pipeline.h"

namespace fulcrum::internal {

// What a pipelined request came to, as an attempt: the reply read by `receiver` and sorted
// (a result, a declared exception, a Thrift application error, a NotMaster refusal), or the
// transport's failure.
AttemptOutcome OutcomeOf(const PipelineResult& result, AsyncReceiver& receiver, Protocol protocol,
                         bool master_slave);

// An AttemptRunner that sends the call's request on the endpoint's pipeline and waits for its
// reply. A cancelled call's attempts end at once without leaving (kResourceExhausted).
class PipelinedAttempt final : public AttemptRunner {
 public:
  PipelinedAttempt(std::string_view request, AsyncReceiver& receiver, Protocol protocol,
                   bool master_slave, const std::atomic<bool>& cancelled)
      : request_(request),
        receiver_(receiver),
        protocol_(protocol),
        master_slave_(master_slave),
        cancelled_(cancelled) {}

  AttemptOutcome Run(const Backend& backend, TimePoint deadline) override;

 private:
  const std::string_view request_;
  AsyncReceiver& receiver_;
  const Protocol protocol_;
  const bool master_slave_;
  const std::atomic<bool>& cancelled_;
};

// The process's threads for the blocking part of asynchronous calls. Tasks run in order of
// posting, kThreads at a time. Thread-safe; never destroyed.
class RetryLane {
 public:
  static constexpr int kThreads = 4;
  static RetryLane& Instance();
  void Post(std::function<void()> task);

 private:
  RetryLane();
  void Work();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
};

}  // namespace fulcrum::internal
