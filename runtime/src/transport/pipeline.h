// Pipeline: an endpoint's pipelined connections, for asynchronous calls (Channel::CallAsync).
//
//   Pipeline pipeline(endpoint, options, clock);                  // ConnectionPool owns one
//   pipeline.Send(message, deadline, &request);  // request.OnReply(result) once, later
//
// A few connections per endpoint (PoolOptions::pipelined_connections), each carrying many
// requests at once. A Thrift server answers one connection's requests in order, so replies
// are matched to requests in order, and each reply's seqid (the connection numbers its
// requests itself) must be the one expected: a reply that does not match closes the
// connection and fails only the requests on it.
//
// Writes: the calling thread appends its framed request to the connection's buffer and, when
// no other thread is writing, sends the buffer itself, with whatever other callers append
// meanwhile (one send() for several requests); what the socket does not take at once is sent
// by the loop thread when it becomes writable. Reads: the loop thread (io_loop.h) reads as much
// as has come (several replies per read) and hands each reply to its request.
//
// Deadlines: a request past its deadline is answered kDeadlineExceeded by the loop's tick (at
// most IoLoop::kTick late) and its reply, when it comes, is dropped. A connection whose oldest
// request is kStallGrace past its deadline is closed: the server is stuck on it, and everything
// queued behind it would wait as long.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/connection.h"
#include "fulcrum/endpoint.h"
#include "fulcrum/status.h"

namespace fulcrum::internal {

// What a pipelined request came to.
struct PipelineResult {
  StatusCode code = StatusCode::kOk;  // kOk: [data, data + size) is the reply
  std::string detail;
  bool connected = false;         // the connection was established (the request may have left)
  bool sent = false;              // the request fully left
  const uint8_t* data = nullptr;  // valid during OnReply only
  size_t size = 0;
};

// A request waiting for its reply; told exactly once. Must outlive that call.
class PipelineRequest {
 public:
  virtual void OnReply(PipelineResult& result) = 0;

 protected:
  ~PipelineRequest() = default;
};

class PipelinedConnection;

class Pipeline {
 public:
  static constexpr Duration kStallGrace = std::chrono::milliseconds(100);

  Pipeline(Endpoint endpoint, PoolOptions options, const Clock& clock);
  ~Pipeline();

  // Queues `message` (one Thrift message as a stock client writes it, unframed) on one of the
  // endpoint's connections; `request` is told what came of it, on the loop thread (or on this
  // one, when it fails at once). After Shutdown: fails at once with kResourceExhausted.
  void Send(std::string_view message, TimePoint deadline, PipelineRequest* request);

  // New requests fail; connections close once their requests are answered.
  void Shutdown();

  int open_connections() const;
  int64_t in_flight() const;

 private:
  const Endpoint endpoint_;
  const PoolOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  bool shutdown_ = false;
  std::vector<std::shared_ptr<PipelinedConnection>> connections_;  // a slot may be null
};

}  // namespace fulcrum::internal
