// FulcrumResolver: a fulcrum::Resolver that long-polls fulcrum-registry's watch for one
// service and delivers whole EndpointSets (the UP, not drained instances, with the weights an
// administrator set). When the registry is unreachable it keeps quiet about endpoints (the
// channel keeps the last set), reports OnError once per outage, logs, and catches up as soon
// as the registry answers again.
//
//   FulcrumResolver resolver({.connection = {.host = "127.0.0.1", .port = 7000},
//                             .service = "calc"});
//   resolver.Start(&listener);
//
// Thread-safe as fulcrum::Resolver says; callbacks run on the resolver's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/resolver.h"

namespace fulcrum::registry_client {

struct FulcrumResolverOptions {
  ConnectionOptions connection;
  std::string service;
  // Each long poll asks the registry to hold it this long at most.
  std::chrono::milliseconds max_wait{10'000};
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
};

// The endpoints clients should use from a registry snapshot: UP and not drained.
EndpointSet ToEndpointSet(const thrift::ServiceSnapshot& snapshot);

// The registry's role enum as the runtime's (unknown values: kNone).
InstanceRole ToInstanceRole(thrift::Role::type role);

class FulcrumResolver final : public Resolver {
 public:
  explicit FulcrumResolver(FulcrumResolverOptions options);
  ~FulcrumResolver() override;

  Status Start(ResolverListener* listener) override;
  void Stop() override;

 private:
  void Loop();
  bool Wait(std::chrono::milliseconds d);

  FulcrumResolverOptions options_;
  ResolverListener* listener_ = nullptr;

  std::mutex conn_mu_;
  std::unique_ptr<RegistryConnection> conn_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fulcrum::registry_client
