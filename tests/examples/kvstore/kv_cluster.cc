#include "kv_cluster.h"

#include <glog/logging.h>
#include <signal.h>

#include <algorithm>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TSocket.h>

#include <nlohmann/json.hpp>

#include "control_plane.h"
#include "etcd_codec.h"
#include "etcd_http_client.h"
#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/framed_transport.h"

namespace kvstore::test {

using registry_test::ChildProcess;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kToken[] = "kvstore-test-token";
constexpr char kService[] = "KvStore";

std::string ControlPlaneName(ControlPlane plane) {
  return plane == ControlPlane::kRegistry ? "Registry" : "Etcd";
}

KvCluster::KvCluster(ControlPlane plane) : plane_(plane) {
  registry_test::WriteFile(TokenFile(), kToken);
  CHECK(RegisterDiscovery().ok());
}

KvCluster::~KvCluster() = default;  // ChildProcess and EtcdProcess SIGKILL and reap by PID

constexpr char kEtcdUser[] = "kv";
constexpr char kEtcdPassword[] = "kv-secret";

std::string KvCluster::RegistryUri() const {
  if (plane_ == ControlPlane::kRegistry) return "fulcrum://" + RegistryAddress();
  std::string hosts;
  for (const std::string& a : etcd_->addresses()) hosts += (hosts.empty() ? "" : ",") + a;
  return "etcd://" + hosts + "?user=" + kEtcdUser + "&password_file=" + dir_.path() + "/etcd.pw";
}

bool KvCluster::StartRegistry() {
  if (plane_ == ControlPlane::kEtcd) {
    if (etcd_ != nullptr) return false;  // started once per cluster
    registry_test::WriteFile(dir_.path() + "/etcd.pw", kEtcdPassword);
    etcd_ = std::make_unique<fulcrum::etcd_test::EtcdCluster>(dir_.path() + "/etcd");
    fulcrum::Status s = etcd_->Start();
    if (s.ok()) s = etcd_->EnableAuth(kEtcdUser, kEtcdPassword, "/fulcrum");
    if (!s.ok()) LOG(ERROR) << "etcd did not start: " << s;
    return s.ok();
  }
  std::vector<std::string> argv = {FULCRUM_REGISTRY_BIN,
                                   "--port=" + std::to_string(registry_port_.load()),
                                   "--data_dir=" + dir_.path() + "/registry-data",
                                   "--token_file=" + TokenFile(), "--logtostderr"};
  registry_.reset();
  const std::string log = dir_.path() + "/registry.log";
  registry_ = ChildProcess::Spawn(argv, log);
  const std::string line = registry_->WaitForLine("LISTENING", seconds(20));
  if (line.empty()) return false;
  registry_port_ = std::stoi(line.substr(line.find(' ') + 1));
  return true;
}

std::string KvCluster::Spawn(ServerProcess& s, const std::string& port_flag) {
  // etcd: the replicas' leases live 2 s (the TTL the docs measure failover with).
  const std::string registry =
      plane_ == ControlPlane::kRegistry ? RegistryUri() : RegistryUri() + "&ttl_s=2";
  std::vector<std::string> argv = {KVSTORE_SERVER_BIN, "--registry=" + registry, port_flag,
                                   "--logtostderr"};
  if (plane_ == ControlPlane::kRegistry) argv.push_back("--token_file=" + TokenFile());
  argv.insert(argv.end(), s.flags.begin(), s.flags.end());
  s.process.reset();
  s.process = ChildProcess::Spawn(argv, s.log);  // appends to the log of earlier runs
  const std::string line = s.process->WaitForLine("LISTENING", seconds(20));
  if (line.empty()) return "";
  return "127.0.0.1:" + line.substr(line.find(' ') + 1);
}

int KvCluster::StartServer(std::vector<std::string> extra_flags) {
  ServerProcess s;
  s.log = dir_.path() + "/server" + std::to_string(servers_.size()) + ".log";
  s.flags = std::move(extra_flags);
  s.address = Spawn(s, "--port=0");
  if (s.address.empty()) return -1;
  servers_.push_back(std::move(s));
  return static_cast<int>(servers_.size()) - 1;
}

bool KvCluster::Restart(int i, std::vector<std::string> extra_flags) {
  ServerProcess& s = servers_.at(static_cast<size_t>(i));
  const std::string port = s.address.substr(s.address.rfind(':') + 1);
  std::vector<std::string> first = s.flags;
  s.flags.insert(s.flags.end(), extra_flags.begin(), extra_flags.end());
  const std::string address = Spawn(s, "--port=" + port);
  s.flags = std::move(first);
  return address == s.address;
}

int KvCluster::IndexOf(const std::string& address) const {
  for (size_t i = 0; i < servers_.size(); ++i) {
    if (servers_[i].address == address) return static_cast<int>(i);
  }
  return -1;
}

void KvCluster::Kill(int i) {
  ChildProcess& p = Server(i);
  p.Signal(SIGKILL);
  p.Wait(seconds(10));
}

std::optional<GroupView> KvCluster::LookupEtcd() const {
  namespace etcd = fulcrum::etcd;
  const std::string key = etcd::LeaderKey("/fulcrum", kService, "g1");
  std::vector<etcd::EtcdAddress> members;
  for (int i = 0; i < etcd_->size(); ++i) {
    members.push_back({"127.0.0.1", static_cast<uint16_t>(etcd_->member(i).client_port())});
  }
  etcd::EtcdHttpClient http(members, milliseconds(1000),
                            etcd::EtcdCredentials{kEtcdUser, kEtcdPassword});
  auto body = http.Post("/v3/kv/range", nlohmann::json{{"key", etcd::Base64Encode(key)}}.dump());
  if (!body.ok()) return std::nullopt;
  auto range = etcd::ParseRangeResponse(*body);
  if (!range.ok()) return std::nullopt;
  GroupView v;
  v.known = true;
  if (range->kvs.empty()) return v;
  auto leader = etcd::DecodeLeader(range->kvs.front().value);
  if (!leader.ok()) return std::nullopt;
  v.epoch = range->kvs.front().create_revision;
  v.master = leader->address;
  v.up_masters = 1;
  return v;
}

std::optional<GroupView> KvCluster::Lookup() const {
  if (plane_ == ControlPlane::kEtcd) return LookupEtcd();
  fulcrum::registry_client::ConnectionOptions o;
  o.port = registry_port_.load();
  o.connect_timeout_ms = 200;
  o.recv_timeout_ms = 2000;
  auto conn = fulcrum::registry_client::RegistryConnection::Open(o);
  if (!conn.ok()) return std::nullopt;
  try {
    fulcrum::registry::thrift::ServiceSnapshot snap;
    conn.value()->client().lookup(snap, kService);
    GroupView v;
    for (const auto& g : snap.groups) {
      v.known = true;
      v.epoch = g.epoch;
      v.master = g.master_address;
    }
    for (const auto& i : snap.instances) {
      if (i.health == fulcrum::registry::thrift::Health::UP &&
          i.role == fulcrum::registry::thrift::Role::MASTER) {
        v.up_masters++;
      }
    }
    return v;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<GroupView> KvCluster::WaitForMaster(int64_t min_epoch, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto v = Lookup();
    if (v && v->epoch > min_epoch && !v->master.empty()) return v;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return std::nullopt;
}

std::optional<rpc::ReplicaStatus> KvCluster::Status(const std::string& address) const {
  const size_t colon = address.rfind(':');
  try {
    auto socket = std::make_shared<apache::thrift::transport::TSocket>(
        address.substr(0, colon), std::stoi(address.substr(colon + 1)));
    socket->setConnTimeout(500);
    socket->setRecvTimeout(2000);
    auto transport = std::make_shared<fulcrum::FramedTransport>(socket);
    rpc::KvStoreClient client(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    rpc::ReplicaStatus s;
    client.status(s);
    return s;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool KvCluster::WaitForInSync(const std::string& address, int n, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = Status(address);
    if (s && s->role == "master" && s->insync_slaves >= n) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return false;
}

registry_test::CommandResult KvCluster::Ctl(std::vector<std::string> args) const {
  std::vector<std::string> argv = {FULCRUMCTL_BIN, "--registry=" + RegistryUri(),
                                   "--timeout_ms=15000"};
  if (plane_ == ControlPlane::kRegistry) argv.push_back("--token_file=" + TokenFile());
  argv.insert(argv.end(), args.begin(), args.end());
  return registry_test::RunCommand(argv, seconds(30));
}

std::string KvCluster::LogTail() const {
  auto tail = [](const std::string& path) {
    const std::string all = registry_test::ReadFile(path);
    return all.size() > 8000 ? all.substr(all.size() - 8000) : all;
  };
  std::string out = plane_ == ControlPlane::kRegistry
                        ? "--- registry.log\n" + tail(dir_.path() + "/registry.log")
                        : "";
  for (int i = 0; plane_ == ControlPlane::kEtcd && i < etcd_->size(); ++i) {
    out += "--- " + etcd_->member(i).log_path() + "\n" + tail(etcd_->member(i).log_path());
  }
  for (const auto& s : servers_) out += "--- " + s.address + " (" + s.log + ")\n" + tail(s.log);
  return out;
}

Writer::Writer(const std::string& registry, int threads, milliseconds pause,
               milliseconds call_timeout)
    : client_(std::make_shared<rpc::fulcrum_gen::KvStoreBalancedClient>(
          ServiceUri(registry, kService), rpc::fulcrum_gen::KvStoreChannelOptions())),
      pause_(pause),
      call_timeout_(call_timeout) {
  for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { Run(t); });
}

Writer::~Writer() { Stop(); }

void Writer::Stop() {
  stop_.store(true);
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void Writer::Run(int thread) {
  fulcrum::CallOptions call;
  call.timeout = call_timeout_;
  for (uint64_t i = 0; !stop_.load(); ++i) {
    const std::string key = "w" + std::to_string(thread) + "-" + std::to_string(i);
    const SteadyTime start = std::chrono::steady_clock::now();
    try {
      client_->put(key, key, call);
      const SteadyTime end = std::chrono::steady_clock::now();
      std::lock_guard lock(mu_);
      acks_.push_back({key, start, end});
      acked_count_.fetch_add(1);
    } catch (const std::exception& e) {
      failed_.fetch_add(1);
      std::lock_guard lock(mu_);
      if (failures_.size() < 20) failures_.push_back(key + ": " + e.what());
    }
    if (pause_.count() > 0) std::this_thread::sleep_for(pause_);
  }
}

std::vector<Writer::Ack> Writer::Acked() const {
  std::lock_guard lock(mu_);
  return acks_;
}

std::vector<std::string> Writer::Failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

std::optional<SteadyTime> Writer::FirstAckStartedAfter(SteadyTime t) const {
  std::lock_guard lock(mu_);
  std::optional<SteadyTime> first;
  for (auto it = acks_.rbegin(); it != acks_.rend() && it->end > t; ++it) {
    if (it->start > t && (!first || it->end < *first)) first = it->end;
  }
  return first;
}

std::vector<std::string> MissingKeys(const std::string& registry,
                                     const std::vector<Writer::Ack>& acks) {
  rpc::fulcrum_gen::KvStoreBalancedClient client(ServiceUri(registry, kService),
                                                 rpc::fulcrum_gen::KvStoreChannelOptions());
  fulcrum::CallOptions call;
  call.timeout = seconds(5);
  std::vector<std::string> missing;
  for (const auto& a : acks) {
    try {
      rpc::GetResult r;
      client.get(r, a.key, call);
      if (!r.found || r.value != a.key) missing.push_back(a.key);
    } catch (const std::exception& e) {
      missing.push_back(a.key + " (" + e.what() + ")");
    }
  }
  return missing;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t i = std::min(values.size() - 1, static_cast<size_t>(p * values.size()));
  return values[i];
}

}  // namespace kvstore::test
