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
// Thread-compatible.
#pragma once

#include <memory>
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
  ~EtcdProcess();

  // Chooses the ports now (Start does it if not done), so a URI can name etcd before it runs.
  Status PickPorts();
  // Starts etcd (same ports and data on a restart) and waits until it serves a range (<= 15 s).
  Status Start();
  // SIGKILL and reap.
  void Kill();
  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT

  int client_port() const { return client_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(client_port_); }
  std::string log_path() const { return dir_ + "/etcd.log"; }
  // POSTs to this etcd (1 s timeout).
  StatusOr<std::string> Post(const std::string& path, const std::string& body);
  Status PutRaw(const std::string& key, const std::string& value);

 private:
  Status StartOnce(const std::string& bin);

  std::string dir_;
  bool started_once_ = false;  // later starts must keep the ports: clients know them
  int client_port_ = 0;
  int peer_port_ = 0;
  std::unique_ptr<testing::Subprocess> process_;
};

}  // namespace fulcrum::etcd_test
