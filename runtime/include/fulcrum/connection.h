// Connection: the Thrift connection one attempt of a call runs on, and how a channel pools them.
//
//   channel->Call<CalculatorClient>(kAdd, {}, [](CalculatorClient& c) { return c.add(1, 2); });
//
// Channel::Call hands each attempt `connection.As<Client>()`: a generated Thrift client kept
// with the connection. Everything else about a connection (socket, framing, the deadline
// watch) and the pool that owns it belong to the runtime (runtime/src/transport/).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <typeinfo>
#include <utility>

#include <thrift/protocol/TProtocol.h>

#include "fulcrum/clock.h"
#include "fulcrum/protocol.h"

namespace fulcrum {

// How a channel pools connections to each endpoint (ChannelOptions::pool).
struct PoolOptions {
  Protocol protocol = Protocol::kBinary;
  int max_connections = 64;  // per endpoint; a call waits (until its deadline) beyond this
  // Idle connections kept per endpoint: the shared idle list holds at most this many at once;
  // with the per-thread slots counted too, the channel's housekeeping (every 500 ms) trims
  // back to it.
  int max_idle = 16;
  Duration idle_timeout = std::chrono::seconds(30);
  Duration connect_timeout = std::chrono::milliseconds(500);
  // A connection idle for longer than this is checked (a non-blocking poll) before reuse, so
  // a call is not sent on a connection the server already closed.
  Duration recheck_after_idle = std::chrono::milliseconds(100);
  uint32_t max_frame_size = 64u << 20;
  // Asynchronous calls (Channel::CallAsync): at most this many connections per endpoint, each
  // carrying many requests at once (pipelined, answered in order). A call goes to the first
  // connection with fewer than pipeline_depth requests in flight (another is opened when every
  // open one has that many; all full: the least loaded). Deep pipelines mean few send()s and
  // server wake-ups per call; a second connection gives the server a second thread when one is
  // deep (docs/benchmarks.md measures both ends). A slow call delays the replies queued behind
  // it on its connection: lower pipeline_depth when some calls are much slower than others.
  int pipelined_connections = 2;
  int pipeline_depth = 32;
};

class Connection {
 public:
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The Thrift client of type C on this connection, made on first use and kept with it.
  template <class C>
  C& As() {
    if (client_type_ != &typeid(C)) {
      client_ = std::make_shared<C>(protocol_);
      client_type_ = &typeid(C);
    }
    return *static_cast<C*>(client_.get());
  }

  const std::shared_ptr<apache::thrift::protocol::TProtocol>& protocol() const { return protocol_; }

 protected:
  explicit Connection(std::shared_ptr<apache::thrift::protocol::TProtocol> protocol)
      : protocol_(std::move(protocol)) {}
  ~Connection() = default;  // owned and destroyed as the runtime's own type
  void DropClient() { client_.reset(); }

 private:
  std::shared_ptr<apache::thrift::protocol::TProtocol> protocol_;
  std::shared_ptr<void> client_;
  const std::type_info* client_type_ = nullptr;
};

}  // namespace fulcrum
