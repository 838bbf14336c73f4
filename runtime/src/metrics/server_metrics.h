// What a Server records for /metrics and /status: per method (Thrift's "Service.method"),
// calls, failures and a latency histogram, through the processor's event handler (the hook
// Thrift's generated processors call around every call); calls in flight, connections and
// serving state are read from the server at scrape time. A ServerRegistration adds its
// registration, drain state and (master-slave) role, epoch, lease and refused writes.
//
//   auto metrics = std::make_shared<ServerMetrics>(server);
//   processor->setEventHandler(metrics);
//   metrics->Attach("127.0.0.1:9090");     // once the server listens
//   CollectServerMetrics(families);        // every live server's, at scrape time
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <thrift/TProcessor.h>

#include "metrics/family_set.h"
#include "metrics/hot_metrics.h"

namespace fulcrum {
class Server;
class RoleState;
class Registrar;
}  // namespace fulcrum

namespace fulcrum::internal {

class ServerMethodStats {
 public:
  void OnCall(int64_t latency_ns) {
    const size_t shard = ThisShard();
    hot_.Add(shard, kCalls, 1);
    hot_.Observe(shard, latency_ns);
  }
  void OnFailure() { failures_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t calls() const { return hot_.Sum(kCalls); }
  uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }
  HistogramData latency() const { return hot_.Latency(); }

 private:
  enum Hot : size_t { kCalls, kNumHot };
  ShardedStats<kNumHot> hot_;
  std::atomic<uint64_t> failures_{0};
};

class ServerMetrics final : public apache::thrift::TProcessorEventHandler {
 public:
  explicit ServerMetrics(const Server& server) : server_(server) {}
  ~ServerMetrics() override { Detach(); }

  // Joins LiveServers() under `address` ("host:port"); Detach leaves (the server's
  // destructor calls it before anything a scrape reads goes away).
  void Attach(std::string address);
  void Detach();

  // Thrift's hooks. The processor calls getContext and freeContext on the thread that runs
  // the call (both server types run a call on one thread), so the start time is a
  // thread_local, and the context handed back is the method's stats.
  void* getContext(const char* fn_name, void* server_context) override;
  void freeContext(void* ctx, const char* fn_name) override;
  // An exception not declared in the IDL escaped the handler.
  void handlerError(void* ctx, const char* fn_name) override;

  const Server& server() const { return server_; }
  const std::string& address() const { return address_; }
  const MethodTable<ServerMethodStats>& methods() const { return methods_; }

 private:
  const Server& server_;
  std::string address_;  // set before Attach
  std::atomic<bool> attached_{false};
  MethodTable<ServerMethodStats> methods_;
};

// A ServerRegistration as metrics and /readyz see it.
struct RegistrationMetrics {
  std::string service;
  std::string address;  // "host:port" registered
  std::string group;    // master-slave only
  const Registrar* registrar = nullptr;
  std::shared_ptr<const RoleState> role;  // null: stateless
  std::atomic<bool> draining{false};
};

// Adds every live server's and registration's families to `out`.
void CollectServerMetrics(FamilySet& out);

// /readyz: every server of the process is serving, and every registration is registered and
// not draining. `why` gets the first reason it is not.
bool ProcessReady(std::string* why);

}  // namespace fulcrum::internal
