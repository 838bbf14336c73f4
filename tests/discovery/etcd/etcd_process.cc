#include "etcd_process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "child_process.h"
#include "etcd_codec.h"
#include "support/ports.h"

namespace fulcrum::etcd_test {

namespace {

std::string EtcdBinary() {
  const char* env = std::getenv("FULCRUM_ETCD_BIN");
  return env != nullptr && *env != '\0' ? env : "/usr/bin/etcd";
}

}  // namespace

std::vector<int> PickFreePorts(int n) {
  // Every socket stays bound until all are: the OS cannot hand out one port twice.
  std::vector<int> fds;
  std::vector<int> ports;
  for (int i = 0; i < n; ++i) {
    uint16_t port = 0;
    const int fd = testing::BindLoopback(&port);
    if (fd < 0) break;
    fds.push_back(fd);
    ports.push_back(port);
  }
  for (int fd : fds) close(fd);
  if (static_cast<int>(ports.size()) != n) ports.clear();
  return ports;
}

EtcdProcess::EtcdProcess(std::string dir) : dir_(std::move(dir)) {}

EtcdProcess::~EtcdProcess() {
  if (process_ && !process_->reaped()) {
    process_->Signal(SIGCONT);
    Kill();
  }
}

Status EtcdProcess::PickPorts() {
  if (client_port_ != 0) return Status::Ok();
  const std::vector<int> ports = PickFreePorts(2);
  if (ports.empty()) {
    return Status::Error(StatusCode::kUnavailable, "could not bind two ports on 127.0.0.1");
  }
  client_port_ = ports[0];
  peer_port_ = ports[1];
  return Status::Ok();
}

Status EtcdProcess::Start() {
  const std::string bin = EtcdBinary();
  if (access(bin.c_str(), X_OK) != 0) {
    return Status::Error(StatusCode::kNotFound,
                         "etcd not installed: run scripts/setup.sh (no " + bin + ")");
  }
  // A port picked a moment ago can be taken before etcd binds it (another test's etcd, an
  // outgoing connection): on a first start, pick new ports and try again.
  for (int attempt = 1;; ++attempt) {
    if (Status s = PickPorts(); !s.ok()) return s;
    const size_t log_offset = registry_test::ReadFile(log_path()).size();
    Status s = StartOnce(bin);
    if (s.ok()) {
      started_once_ = true;
      return s;
    }
    const bool port_taken =
        registry_test::ReadFile(log_path()).find("address already in use", log_offset) !=
        std::string::npos;
    if (started_once_ || !port_taken || attempt == 3) return s;
    client_port_ = 0;  // pick again
  }
}

Status EtcdProcess::StartOnce(const std::string& bin) {
  const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  auto spawned = testing::Subprocess::Spawn(
      {bin, "--name=test", "--data-dir=" + dir_ + "/etcd-data", "--listen-client-urls=" + client,
       "--advertise-client-urls=" + client, "--listen-peer-urls=" + peer,
       "--initial-advertise-peer-urls=" + peer, "--initial-cluster=test=" + peer,
       "--initial-cluster-state=new", "--log-level=warn"},
      {.stderr_path = log_path()});
  if (!spawned.ok()) return spawned.status();
  process_ = std::move(spawned).value();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    // Ready when the etcd answering on the client port is this one: its member list names
    // this peer URL (another test's etcd could hold the port if ours failed to bind it).
    StatusOr<std::string> r = Post("/v3/cluster/member/list", "{}");
    if (r.ok() && r->find("\"" + peer + "\"") != std::string::npos) return Status::Ok();
    last = r.ok() ? Status::Error(StatusCode::kUnavailable, "another etcd answers: " + *r)
                  : r.status();
    StatusOr<int> exited = process_->Wait(std::chrono::milliseconds(50));
    if (exited.ok()) {
      return Status::Error(
          StatusCode::kInternal,
          "etcd exited: " + testing::DescribeWaitStatus(*exited) + "; see " + log_path());
    }
  }
  return Status::Error(StatusCode::kDeadlineExceeded, "etcd did not serve within 15 s (" +
                                                          last.message() + "); see " + log_path());
}

void EtcdProcess::Kill() {
  if (!process_ || process_->reaped()) return;
  process_->Signal(SIGKILL);
  (void)process_->Wait(std::chrono::seconds(10));
}

void EtcdProcess::Pause() {
  if (process_) process_->Signal(SIGSTOP);
}

void EtcdProcess::Resume() {
  if (process_) process_->Signal(SIGCONT);
}

StatusOr<std::string> EtcdProcess::Post(const std::string& path, const std::string& body) {
  etcd::EtcdHttpClient http({{"127.0.0.1", static_cast<uint16_t>(client_port_)}},
                            std::chrono::seconds(1));
  return http.Post(path, body);
}

Status EtcdProcess::PutRaw(const std::string& key, const std::string& value) {
  const nlohmann::json put = {{"key", etcd::Base64Encode(key)},
                              {"value", etcd::Base64Encode(value)}};
  StatusOr<std::string> r = Post("/v3/kv/put", put.dump());
  return r.ok() ? Status::Ok() : r.status();
}

}  // namespace fulcrum::etcd_test
