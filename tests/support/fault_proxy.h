// FaultProxy: a TCP proxy on 127.0.0.1 (port chosen by the OS) in front of one upstream
// address, whose faults the test changes at any moment, so slow, stalled and partitioned peers
// can be tested without root or network namespaces.
//
//   fulcrum::testing::FaultProxy proxy(upstream_port);
//   ASSERT_TRUE(proxy.Start().ok());
//   ... point the client (or the server's registry address) at proxy.port() ...
//   proxy.SetLatency(std::chrono::milliseconds(5));   // each chunk, each direction
//   proxy.SetMode(FaultProxy::Mode::kBlackhole);      // a partition: nothing moves
//   proxy.SetMode(FaultProxy::Mode::kPass);           // healed
//   proxy.ResetAll();                                 // RST every open connection
//
// Modes apply to open connections and new ones alike. Bytes are forwarded in order, each chunk
// delayed by the latency set when it was read. One thread accepts, one thread per connection
// forwards both directions; Stop() (or the destructor) closes everything and joins them.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/status.h"

namespace fulcrum::testing {

class FaultProxy {
 public:
  enum class Mode {
    kPass,       // forward everything (after the latency)
    kBlackhole,  // accept, read nothing, forward nothing, keep connections open: a partition
    kRefuse,     // new connections are reset at once; open ones pass
    kTrickle,    // forward one byte every 20 ms
  };

  FaultProxy(std::string upstream_host, uint16_t upstream_port);
  explicit FaultProxy(uint16_t upstream_port) : FaultProxy("127.0.0.1", upstream_port) {}
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  Status Start();
  void Stop();  // idempotent

  uint16_t port() const { return port_; }
  void SetMode(Mode mode) { mode_.store(mode); }
  void SetLatency(Duration latency) { latency_ns_.store(latency.count()); }
  // Resets (RST) every connection open now; later ones are accepted as the mode says.
  void ResetAll();
  int accepted() const { return accepted_.load(); }
  int open_connections() const;

 private:
  struct Link;
  void AcceptLoop();
  void Forward(const std::shared_ptr<Link>& link);

  const std::string upstream_host_;
  const uint16_t upstream_port_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // wakes the accept thread for Stop()
  uint16_t port_ = 0;
  std::atomic<Mode> mode_{Mode::kPass};
  std::atomic<int64_t> latency_ns_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  mutable std::mutex mu_;  // guards links_
  std::vector<std::shared_ptr<Link>> links_;
};

}  // namespace fulcrum::testing
