#include "etcd_process.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
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

EtcdProcess::EtcdProcess(std::string dir, std::string name, int client_port, int peer_port,
                         std::string initial_cluster)
    : dir_(std::move(dir)),
      name_(std::move(name)),
      initial_cluster_(std::move(initial_cluster)),
      started_once_(true),  // the ports are the cluster's: never picked again
      client_port_(client_port),
      peer_port_(peer_port) {}

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
  // A port picked a moment ago can be taken before etcd binds it (another test's etcd, an
  // outgoing connection): on a first start, pick new ports and try again.
  for (int attempt = 1;; ++attempt) {
    if (Status s = PickPorts(); !s.ok()) return s;
    const size_t log_offset = registry_test::ReadFile(log_path()).size();
    Status s = StartOnce();
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

Status EtcdProcess::StartOnce() {
  if (Status s = Spawn(); !s.ok()) return s;
  return WaitReady(std::chrono::steady_clock::now() + std::chrono::seconds(15));
}

Status EtcdProcess::Spawn() {
  const std::string bin = EtcdBinary();
  if (access(bin.c_str(), X_OK) != 0) {
    return Status::Error(StatusCode::kNotFound,
                         "etcd not installed: run scripts/setup.sh (no " + bin + ")");
  }
  if (Status s = PickPorts(); !s.ok()) return s;
  const std::string client =
      std::string(self_tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = peer_url();
  const std::string cluster = initial_cluster_.empty() ? name_ + "=" + peer : initial_cluster_;
  std::vector<std::string> argv = {bin,
                                   "--name=" + name_,
                                   "--data-dir=" + dir_ + "/etcd-data",
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--listen-peer-urls=" + peer,
                                   "--initial-advertise-peer-urls=" + peer,
                                   "--initial-cluster=" + cluster,
                                   "--initial-cluster-state=new",
                                   "--log-level=warn"};
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  auto spawned = testing::Subprocess::Spawn(argv, {.stderr_path = log_path()});
  if (!spawned.ok()) return spawned.status();
  process_ = std::move(spawned).value();
  return Status::Ok();
}

Status EtcdProcess::WaitReady(std::chrono::steady_clock::time_point deadline) {
  const std::string peer = peer_url();
  Status last;
  while (std::chrono::steady_clock::now() < deadline) {
    // Ready when the etcd answering on the client port is this one (its member list names
    // this peer URL: another test's etcd could hold the port if ours failed to bind it) and a
    // linearizable read succeeds (a quorum is up).
    StatusOr<std::string> r = Post("/v3/cluster/member/list", "{}");
    if (r.ok() && r->find("\"" + peer + "\"") != std::string::npos) {
      StatusOr<std::string> read = Post("/v3/kv/range", R"({"key":"cmVhZHk="})");  // "ready"
      if (read.ok() && read->find("\"header\"") != std::string::npos) return Status::Ok();
      last = read.ok() ? Status::Error(StatusCode::kUnavailable, "range: " + *read) : read.status();
    } else {
      last = r.ok() ? Status::Error(StatusCode::kUnavailable, "another etcd answers: " + *r)
                    : r.status();
    }
    StatusOr<int> exited = process_->Wait(std::chrono::milliseconds(50));
    if (exited.ok()) {
      return Status::Error(
          StatusCode::kInternal,
          "etcd exited: " + testing::DescribeWaitStatus(*exited) + "; see " + log_path());
    }
  }
  return Status::Error(StatusCode::kDeadlineExceeded, "etcd " + name_ + " did not serve in time (" +
                                                          last.message() + "); see " + log_path());
}

bool EtcdProcess::running() const { return process_ && !process_->reaped(); }

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
                            std::chrono::seconds(1), root_, self_tls_);
  return http.Post(path, body);
}

void EtcdProcess::ServeTls(std::string cert, std::string key, std::string client_ca,
                           etcd::EtcdTls self) {
  extra_flags_.push_back("--cert-file=" + cert);
  extra_flags_.push_back("--key-file=" + key);
  if (!client_ca.empty()) {
    extra_flags_.push_back("--client-cert-auth");
    extra_flags_.push_back("--trusted-ca-file=" + client_ca);
  }
  self_tls_ = std::move(self);
}

Status EtcdProcess::EnableAuth(const std::string& user, const std::string& password,
                               const std::string& prefix) {
  using nlohmann::json;
  const std::string root_password = "root-" + password;
  const json perm = {{"permType", "READWRITE"},
                     {"key", etcd::Base64Encode(prefix)},
                     {"range_end", etcd::Base64Encode(etcd::PrefixRangeEnd(prefix))}};
  const std::vector<std::pair<std::string, json>> steps = {
      {"/v3/auth/role/add", {{"name", "root"}}},
      {"/v3/auth/user/add", {{"name", "root"}, {"password", root_password}}},
      {"/v3/auth/user/grant", {{"user", "root"}, {"role", "root"}}},
      {"/v3/auth/role/add", {{"name", "fulcrum-rw"}}},
      {"/v3/auth/role/grant", {{"name", "fulcrum-rw"}, {"perm", perm}}},
      {"/v3/auth/user/add", {{"name", user}, {"password", password}}},
      {"/v3/auth/user/grant", {{"user", user}, {"role", "fulcrum-rw"}}},
      {"/v3/auth/enable", json::object()},
  };
  for (const auto& [path, body] : steps) {
    StatusOr<std::string> r = Post(path, body.dump());
    if (!r.ok()) return Status::Error(r.status().code(), path + ": " + r.status().message());
  }
  root_ = etcd::EtcdCredentials{"root", root_password};
  return Status::Ok();
}

void EtcdProcess::AdoptAuth(const std::string& password) {
  root_ = etcd::EtcdCredentials{"root", "root-" + password};
}

Status EtcdProcess::PutRaw(const std::string& key, const std::string& value) {
  const nlohmann::json put = {{"key", etcd::Base64Encode(key)},
                              {"value", etcd::Base64Encode(value)}};
  StatusOr<std::string> r = Post("/v3/kv/put", put.dump());
  return r.ok() ? Status::Ok() : r.status();
}

EtcdCluster::EtcdCluster(std::string dir, int members) : dir_(std::move(dir)) {
  const std::vector<int> ports = PickFreePorts(2 * members);
  std::string cluster;
  for (int i = 0; i < members && !ports.empty(); ++i) {
    if (!cluster.empty()) cluster += ",";
    cluster += "m" + std::to_string(i) + "=http://127.0.0.1:" + std::to_string(ports[2 * i + 1]);
  }
  for (int i = 0; i < members && !ports.empty(); ++i) {
    const std::string member_dir = dir_ + "/m" + std::to_string(i);
    std::filesystem::create_directories(member_dir);
    members_.push_back(std::make_unique<EtcdProcess>(member_dir, "m" + std::to_string(i),
                                                     ports[2 * i], ports[2 * i + 1], cluster));
  }
}

Status EtcdCluster::Start() {
  if (members_.empty()) {
    return Status::Error(StatusCode::kUnavailable, "could not bind ports on 127.0.0.1");
  }
  for (auto& m : members_) {
    if (Status s = m->Spawn(); !s.ok()) return s;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (auto& m : members_) {
    if (Status s = m->WaitReady(deadline); !s.ok()) return s;
  }
  return Status::Ok();
}

Status EtcdCluster::EnableAuth(const std::string& user, const std::string& password,
                               const std::string& prefix) {
  if (members_.empty()) return Status::Error(StatusCode::kUnavailable, "no members");
  if (Status s = members_[0]->EnableAuth(user, password, prefix); !s.ok()) return s;
  for (size_t i = 1; i < members_.size(); ++i) members_[i]->AdoptAuth(password);
  return Status::Ok();
}

std::vector<std::string> EtcdCluster::addresses() const {
  std::vector<std::string> out;
  for (const auto& m : members_) out.push_back(m->address());
  return out;
}

StatusOr<int> EtcdCluster::Leader() {
  // Each live member says who it is and whom it follows; the leader is the one naming itself.
  Status last = Status::Error(StatusCode::kUnavailable, "no member running");
  for (int i = 0; i < size(); ++i) {
    if (!members_[i]->running()) continue;
    StatusOr<std::string> r = members_[i]->Post("/v3/maintenance/status", "{}");
    if (!r.ok()) {
      last = r.status();
      continue;
    }
    const nlohmann::json status = nlohmann::json::parse(*r, nullptr, false);
    if (status.is_discarded() || !status.contains("header") || !status.contains("leader")) {
      last = Status::Error(StatusCode::kInternal, "unexpected status: " + *r);
      continue;
    }
    if (status["header"].value("member_id", "") == status.value("leader", "-")) return i;
  }
  return last;
}

std::string EtcdCluster::Logs() const {
  std::string out;
  for (const auto& m : members_) {
    out += "---- " + m->log_path() + "\n" + registry_test::ReadFile(m->log_path());
  }
  return out;
}

}  // namespace fulcrum::etcd_test
