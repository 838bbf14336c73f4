// EtcdResolver: a fulcrum::Resolver that lists one service's keys in etcd, then watches them
// from the revision after the list, and delivers the whole EndpointSet after the list and
// after each watch answer that changed something.
//
//   EtcdResolver resolver({.endpoints = {{"127.0.0.1", 2379}}, .service = "calc"});
//   resolver.Start(&listener);
//
// When the connection breaks it reports OnError(kUnavailable) once per outage (the channel
// keeps the last set), backs off (jittered, capped at max_backoff), reconnects to the next
// etcd endpoint and resumes the watch from the last revision it saw + 1, so no change is
// missed; if etcd compacted that revision away it lists again. A value that is not a valid
// instance is skipped with a warning. Stop() cancels a blocked read at once.
//
// Thread-safe as fulcrum::Resolver says; callbacks run on the resolver's own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "etcd_codec.h"
#include "etcd_http_client.h"
#include "etcd_uri.h"
#include "fulcrum/resolver.h"

namespace fulcrum::etcd {

struct EtcdResolverOptions {
  std::vector<EtcdAddress> endpoints;
  std::string service;
  std::string prefix = "/fulcrum";
  std::optional<EtcdCredentials> credentials;  // etcd's authentication on
  std::optional<EtcdTls> tls;                  // https to etcd
  std::chrono::milliseconds request_timeout{1000};
  // A watch that brings nothing for this long is reopened quietly (from the same revision),
  // so a connection that died without a word is noticed.
  std::chrono::milliseconds watch_idle{30'000};
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{1000};
};

// The service's instances keyed by etcd key, and its groups' leader keys: what a list or a
// watch event leaves standing. Thread-compatible.
class InstanceTable {
 public:
  // A value that does not decode is logged and drops the key (a PUT of garbage over a good
  // value removes the instance). Returns false for such a value. `create_revision`: a leader
  // key's epoch.
  bool Put(const std::string& key, const std::string& value, int64_t create_revision = 0);
  void Delete(const std::string& key) {
    by_key_.erase(key);
    leaders_.erase(key);
  }
  void Clear() {
    by_key_.clear();
    leaders_.clear();
  }
  // Instances of a group are its master (the leader key names their address and
  // incarnation) or slaves, with the group's epoch (0 while it has no master).
  EndpointSet Snapshot(int64_t revision) const;
  size_t size() const { return by_key_.size(); }

 private:
  struct Leader {
    std::string group;
    LeaderValue value;
    int64_t epoch = 0;
  };
  std::map<std::string, Endpoint> by_key_;
  std::map<std::string, Leader> leaders_;  // by leader key
};

class EtcdResolver final : public Resolver {
 public:
  explicit EtcdResolver(EtcdResolverOptions options);
  ~EtcdResolver() override;

  Status Start(ResolverListener* listener) override;
  void Stop() override;

 private:
  void Loop();
  // Lists the service; fills table_ and revision_.
  Status List();
  // Opens the watch from revision_ + 1 and applies what it brings until it breaks or
  // stopping. Sets *relist when etcd compacted the revision asked for.
  Status Watch(bool* relist, bool* outage);
  bool Stopping();
  bool Wait(std::chrono::milliseconds d);  // false when stopping

  const EtcdResolverOptions options_;
  const std::string key_prefix_;
  EtcdHttpClient http_;
  ResolverListener* listener_ = nullptr;
  InstanceTable table_;
  int64_t revision_ = 0;        // every change up to this revision is in table_
  bool token_refused_ = false;  // the last watch was cancelled for its token

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fulcrum::etcd
