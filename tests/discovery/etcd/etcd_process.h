// EtcdProcess: a real single-member etcd for tests, started as a child process by PID
// (tests/support/subprocess.h) on 127.0.0.1 with ports the OS picked, its data in a directory
// the test owns. It can be killed and started again on the same ports and data, or paused
// (SIGSTOP) to look like a hung etcd.
//
//   EtcdProcess etcd(dir);
//   ASSERT_TRUE(etcd.Start().ok());
//   std::string uri = "etcd://" + etcd.address() + "/echo";
//
// etcd cannot listen on port 0, so the ports are picked by binding port 0, reading them and
// closing the sockets before etcd binds them. Should another process take one meanwhile, the
// first Start picks new ports and tries again; it counts etcd as up only when the etcd that
// answers on the client port lists this instance's peer URL.
// A missing etcd binary is an error telling to run scripts/setup.sh (tests fail, never skip).
//
// EtcdCluster: three members (or n) on loopback forming one cluster, each an EtcdProcess with
// its own data directory, any of them killed, paused or restarted by the test.
//
//   EtcdCluster cluster(dir);
//   ASSERT_TRUE(cluster.Start().ok());
//   int leader = cluster.Leader().value();
//   cluster.member(leader).Kill();
//
// Thread-compatible.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "etcd_http_client.h"
#include "fulcrum/status.h"
#include "support/subprocess.h"

namespace fulcrum::etcd_test {

// `n` distinct ports on 127.0.0.1 that were free a moment ago (empty on failure).
std::vector<int> PickFreePorts(int n);

class EtcdProcess {
 public:
  explicit EtcdProcess(std::string dir);
  // A member of a cluster: its name, fixed ports, and the --initial-cluster list of every
  // member ("m0=http://127.0.0.1:P0,...").
  EtcdProcess(std::string dir, std::string name, int client_port, int peer_port,
              std::string initial_cluster);
  ~EtcdProcess();

  // Chooses the ports now (Start does it if not done), so a URI can name etcd before it runs.
  Status PickPorts();
  // Starts etcd (same ports and data on a restart) and waits until it serves a range (<= 15 s).
  Status Start();
  // Starts etcd without waiting: a cluster member serves only once a quorum has started.
  Status Spawn();
  // Waits until this etcd serves a linearizable range (a quorum is up), at most until
  // `deadline`.
  Status WaitReady(std::chrono::steady_clock::time_point deadline);
  // SIGKILL and reap.
  void Kill();
  bool running() const;
  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT

  int client_port() const { return client_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(client_port_); }
  std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(peer_port_); }
  std::string log_path() const { return dir_ + "/etcd.log"; }
  // Serves https on the client port with `cert` and `key`; with `client_ca` set, demands a
  // client certificate signed by it (--client-cert-auth). This object's own calls (readiness,
  // Post) use `self`. Before Start.
  void ServeTls(std::string cert, std::string key, std::string client_ca, etcd::EtcdTls self);
  // An etcd flag for the next start (e.g. "--auth-token-ttl=1").
  void AddFlag(std::string flag) { extra_flags_.push_back(std::move(flag)); }
  // Turns etcd's authentication on: a root user, and `user` (password `password`) whose role
  // may read and write only the keys under `prefix`. This object's own calls authenticate as
  // root from then on.
  Status EnableAuth(const std::string& user, const std::string& password,
                    const std::string& prefix);
  // POSTs to this etcd (1 s timeout).
  StatusOr<std::string> Post(const std::string& path, const std::string& body);
  Status PutRaw(const std::string& key, const std::string& value);
  // Another member of a cluster turned authentication on (EnableAuth with this `password`):
  // this object's own calls authenticate as root from then on.
  void AdoptAuth(const std::string& password);

 private:
  Status StartOnce();

  std::string dir_;
  std::string name_ = "test";
  std::string initial_cluster_;  // empty: a cluster of this one
  bool started_once_ = false;    // later starts must keep the ports: clients know them
  int client_port_ = 0;
  int peer_port_ = 0;
  std::vector<std::string> extra_flags_;
  std::optional<etcd::EtcdCredentials> root_;  // set once auth is on
  std::optional<etcd::EtcdTls> self_tls_;      // set when serving https
  std::unique_ptr<testing::Subprocess> process_;
};

class EtcdCluster {
 public:
  explicit EtcdCluster(std::string dir, int members = 3);

  // Starts every member and waits (<= 30 s) until each serves.
  Status Start();
  EtcdProcess& member(int i) { return *members_[i]; }
  int size() const { return static_cast<int>(members_.size()); }
  // Every member's client address, "127.0.0.1:P", in member order.
  std::vector<std::string> addresses() const;
  // EtcdProcess::EnableAuth through member 0, for the whole cluster.
  Status EnableAuth(const std::string& user, const std::string& password,
                    const std::string& prefix);
  // The index of the member the live members name as leader.
  StatusOr<int> Leader();
  // Every member's log, for a failure message.
  std::string Logs() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<EtcdProcess>> members_;
};

}  // namespace fulcrum::etcd_test
