// KvCluster: a control plane (fulcrum-registry, or a 3-member etcd cluster with authentication
// on: a user allowed only the keys under /fulcrum) and a group of
// kvstore_server processes on 127.0.0.1 for the kvstore's multi-process tests, plus Writer, a
// background load of unique acknowledged puts.
// Every process is started with port 0 (the registry keeps its first port across restarts),
// and stopped by its PID: signals through ChildProcess, SIGKILL by the destructor at the
// latest. Logs go to files in a temporary directory (LogTail prints them on failure).
//
//   KvCluster c;
//   ASSERT_TRUE(c.StartRegistry());
//   for (int i = 0; i < 3; ++i) ASSERT_GE(c.StartServer(), 0);
//   auto group = c.WaitForMaster(0, std::chrono::seconds(10));   // {epoch, address}
//   Writer w(c.RegistryUri(), 2);  ... w.Stop();
//
// Not thread-safe, except Writer's accessors and Lookup (which opens its own connection).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "etcd_process.h"
#include "kvstore_fulcrum.h"

namespace kvstore::test {

// Who elects the master: fulcrum-registry (its heartbeats and promotion) or etcd (the
// replicas' own election on a 3-member etcd cluster, a 2 s lease TTL).
enum class ControlPlane { kRegistry, kEtcd };
std::string ControlPlaneName(ControlPlane plane);

namespace registry_test = ::fulcrum::registry_test;

using SteadyTime = std::chrono::steady_clock::time_point;

struct GroupView {
  bool known = false;  // the registry listed the group
  int64_t epoch = 0;
  std::string master;  // "" while there is none
  int up_masters = 0;  // UP instances the registry says are MASTER
};

class KvCluster {
 public:
  explicit KvCluster(ControlPlane plane = ControlPlane::kRegistry);
  ~KvCluster();

  ControlPlane plane() const { return plane_; }
  // Starts (or restarts, on the same port) the control plane: fulcrum-registry with the
  // default master-slave settings, or etcd. False if it did not come up.
  bool StartRegistry();
  // fulcrum-registry only.
  registry_test::ChildProcess& registry() { return *registry_; }
  std::string RegistryAddress() const {
    return "127.0.0.1:" + std::to_string(registry_port_.load());
  }
  // The control plane as the clients' --registry takes it ("fulcrum://127.0.0.1:P" or
  // "etcd://127.0.0.1:P1,...?user=kv&password_file=F"; the servers' etcd URI adds ttl_s=2).
  std::string RegistryUri() const;
  // etcd only.
  fulcrum::etcd_test::EtcdCluster& etcd() { return *etcd_; }

  // Starts a kvstore_server; returns its index (for Server/Address) or -1.
  int StartServer(std::vector<std::string> extra_flags = {});
  registry_test::ChildProcess& Server(int i) {
    return *servers_.at(static_cast<size_t>(i)).process;
  }
  std::string Address(int i) const { return servers_.at(static_cast<size_t>(i)).address; }
  int IndexOf(const std::string& address) const;  // -1 if unknown
  // SIGKILLs server i and reaps it.
  void Kill(int i);
  // Starts server i again (after Kill) on the port it had, with the flags of its first start
  // plus `extra_flags`. False if it did not come up.
  bool Restart(int i, std::vector<std::string> extra_flags = {});

  // The control plane's view of the group, or nullopt if it cannot be asked.
  std::optional<GroupView> Lookup() const;
  // Waits until the registry names a master with an epoch > min_epoch.
  std::optional<GroupView> WaitForMaster(int64_t min_epoch, std::chrono::milliseconds timeout);
  // Asks one replica directly.
  std::optional<rpc::ReplicaStatus> Status(const std::string& address) const;
  // Waits until the master at `address` counts `n` in-sync slaves.
  bool WaitForInSync(const std::string& address, int n, std::chrono::milliseconds timeout);

  // fulcrumctl with the control plane (and the registry's token) filled in.
  registry_test::CommandResult Ctl(std::vector<std::string> args) const;
  std::string TokenFile() const { return dir_.path() + "/token"; }
  // The last lines of every process's log, for failure messages.
  std::string LogTail() const;

 private:
  struct ServerProcess {
    std::optional<registry_test::ChildProcess> process;
    std::string address;
    std::string log;
    std::vector<std::string> flags;  // the extra flags of its first start
  };
  // Spawns a kvstore_server with `port_flag` and `flags`; the address it listens on, or "".
  std::string Spawn(ServerProcess& s, const std::string& port_flag);
  std::optional<GroupView> LookupEtcd() const;
  const ControlPlane plane_;
  registry_test::TempDir dir_;
  std::optional<registry_test::ChildProcess> registry_;
  std::unique_ptr<fulcrum::etcd_test::EtcdCluster> etcd_;
  std::atomic<int> registry_port_{0};  // read by Lookup from other threads
  std::vector<ServerProcess> servers_;
};

// Writer threads issuing put(unique key, value) through a master-slave balanced client.
class Writer {
 public:
  struct Ack {
    std::string key;
    SteadyTime start;
    SteadyTime end;
  };
  // `registry`: KvCluster::RegistryUri() (or a fulcrum-registry's bare host:port).
  Writer(const std::string& registry, int threads,
         std::chrono::milliseconds pause = std::chrono::milliseconds(2),
         std::chrono::milliseconds call_timeout = std::chrono::milliseconds(5000));
  ~Writer();  // Stop()s
  void Stop();

  std::vector<Ack> Acked() const;
  uint64_t acked() const { return acked_count_.load(); }
  uint64_t failed() const { return failed_.load(); }
  std::vector<std::string> Failures() const;  // the first few messages
  // The end time of the first put started after `t` and acknowledged; nullopt if none yet.
  std::optional<SteadyTime> FirstAckStartedAfter(SteadyTime t) const;

 private:
  void Run(int thread);

  std::shared_ptr<rpc::fulcrum_gen::KvStoreBalancedClient> client_;
  std::chrono::milliseconds pause_;
  std::chrono::milliseconds call_timeout_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> acked_count_{0};
  std::atomic<uint64_t> failed_{0};
  mutable std::mutex mu_;
  std::vector<Ack> acks_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// Reads every key through a fresh master-slave client; returns the keys missing or wrong
// (the value of key k is k itself).
std::vector<std::string> MissingKeys(const std::string& registry,
                                     const std::vector<Writer::Ack>& acks);

// p-th percentile (0..1) of `values` in milliseconds.
double Percentile(std::vector<double> values, double p);

}  // namespace kvstore::test
