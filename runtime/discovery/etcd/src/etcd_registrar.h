// EtcdRegistrar: fulcrum::Registrar for etcd. Created through
// CreateRegistrar("etcd://h1:p1,h2:p2?prefix=/fulcrum&ttl_s=3") once RegisterEtcdDiscovery()
// ran, or directly by tests.
//
//   EtcdRegistrar registrar({.endpoints = {{"127.0.0.1", 2379}}});
//   registrar.Register(instance, {});
//
// One lease per instance: Register grants a lease (etcd may raise a small TTL to its minimum;
// the granted TTL is what counts), puts <prefix>/services/<service>/<host:port> with it, and a
// background thread keeps the lease alive every TTL/3. When etcd says the lease is gone (it
// expired while we could not reach etcd), the thread grants a new one and puts the key again.
// Deregister revokes the lease, which deletes the key at once.
//
// A master-slave instance (ServiceInstance::group set) also takes part in its group's
// election every election_interval (etcd_election.h): it publishes its replication position,
// reads the group, campaigns when it is the most up-to-date live instance and there is no
// master, and hands RegistrarDirectives (role, epoch = the leader key's create_revision,
// master, and as master the lease: the send time of the last keepalive etcd answered + the
// granted TTL) to on_directives, which RoleState applies as it does the registry's.
//
// Thread-safe as fulcrum::Registrar says.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "etcd_http_client.h"
#include "etcd_uri.h"
#include "fulcrum/registrar.h"

namespace fulcrum::etcd {

struct EtcdRegistrarOptions {
  std::vector<EtcdAddress> endpoints;
  std::string prefix = "/fulcrum";
  std::optional<EtcdCredentials> credentials;  // etcd's authentication on
  std::optional<EtcdTls> tls;                  // https to etcd
  int ttl_s = 3;                               // asked for; etcd may grant more
  // Master-slave instances: how often the group is read (and positions published).
  std::chrono::milliseconds election_interval{200};
  // Each HTTP call, per etcd endpoint tried.
  std::chrono::milliseconds request_timeout{1000};
  // Retry backoff while etcd is unreachable (doubles up to max).
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{1000};
};

class EtcdRegistrar final : public Registrar {
 public:
  explicit EtcdRegistrar(EtcdRegistrarOptions options);
  ~EtcdRegistrar() override;  // stops keeping the lease alive (does not revoke it)

  Status Register(const ServiceInstance& instance, RegistrationOptions options) override;
  Status Deregister() override;
  // True from a successful put until Deregister, the lease is found gone, or one granted TTL
  // passes without a keepalive etcd answered (the lease has then surely expired).
  bool registered() const override;

  // The lease TTL etcd granted last (0 before the first grant).
  int64_t granted_ttl_s() const { return granted_ttl_s_.load(); }
  // How many times the lease was found gone and the instance registered again.
  int64_t reregistrations() const { return reregistrations_.load(); }
  // Master-slave: elections this instance won.
  int64_t elections_won() const { return elections_won_.load(); }

 private:
  void Loop();
  // Grants a lease and puts the key with it.
  Status RegisterOnce();
  // `sent` is when the request that etcd answered with `ttl_s` left.
  void AliveFor(std::chrono::steady_clock::time_point sent, int64_t ttl_s);
  // OK with `gone` set when etcd no longer knows the lease.
  Status KeepAliveOnce(bool* gone);
  std::chrono::milliseconds KeepAliveInterval() const;
  // Master-slave: one election tick (publish, read, maybe campaign) and the directives.
  Status ElectionStep();
  // Campaigns for the empty leader key, if the term key's mod_revision is still
  // `term_revision`; true if this instance won (then *epoch is set). The target of a planned
  // switchover also deletes the switchover's key.
  StatusOr<bool> Campaign(int64_t term_revision, bool switchover_target, int64_t* epoch);
  // A master handing over: deletes the leader key it created at `epoch`; false if it is not
  // that key any more.
  StatusOr<bool> Resign(int64_t epoch);
  bool Wait(std::chrono::milliseconds d);  // false when stopping
  void StopThread();

  const EtcdRegistrarOptions options_;
  EtcdHttpClient http_;  // the background thread's (Cancel()ed by StopThread)
  ServiceInstance instance_;
  uint64_t incarnation_ = 0;
  std::string key_;
  RegistrationOptions callbacks_;
  std::atomic<int64_t> lease_{0};
  std::atomic<int64_t> granted_ttl_s_{0};
  std::atomic<bool> registered_{false};
  // steady_clock nanoseconds: the lease lives at least until then (from the last answer).
  std::atomic<int64_t> alive_until_ns_{0};
  std::atomic<int64_t> reregistrations_{0};
  std::atomic<int64_t> elections_won_{0};

  // Master-slave state, the background thread's own.
  std::string address_;  // "host:port"
  std::string leader_key_;
  std::string candidates_prefix_;
  TimePoint lease_sent_at_{};  // when the request that last renewed the lease left
  std::chrono::steady_clock::time_point next_keepalive_{};
  int64_t published_position_ = -1;  // on lease published_lease_
  int64_t published_lease_ = 0;
  int64_t commit_seen_ = 0;
  int64_t epoch_seen_ = 0;
  bool master_ = false;
  bool stalled_ = false;  // the group cannot elect (logged once)

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace fulcrum::etcd
