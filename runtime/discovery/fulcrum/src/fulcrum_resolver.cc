#include "fulcrum_resolver.h"

#include <glog/logging.h>

namespace fulcrum::registry_client {

InstanceRole ToInstanceRole(thrift::Role::type r) {
  switch (r) {
    case thrift::Role::MASTER:
      return InstanceRole::kMaster;
    case thrift::Role::SLAVE:
      return InstanceRole::kSlave;
    default:
      return InstanceRole::kNone;
  }
}

EndpointSet ToEndpointSet(const thrift::ServiceSnapshot& snapshot) {
  EndpointSet set;
  set.version = static_cast<uint64_t>(snapshot.version);
  for (const auto& s : snapshot.instances) {
    if (s.health != thrift::Health::UP || s.drained) continue;
    Endpoint e;
    e.host = s.instance.host;
    e.port = static_cast<uint16_t>(s.instance.port);
    e.weight = static_cast<uint32_t>(std::max(0, s.effective_weight));
    e.zone = s.instance.zone;
    e.tags = s.instance.metadata;
    e.group = s.group;
    e.role = ToInstanceRole(s.role);
    e.epoch = s.epoch;
    e.incarnation = static_cast<uint64_t>(s.instance.incarnation);
    set.endpoints.push_back(std::move(e));
  }
  return set;
}

FulcrumResolver::FulcrumResolver(FulcrumResolverOptions options) : options_(std::move(options)) {
  // A watch may legitimately take max_wait; give the socket that plus slack.
  options_.connection.recv_timeout_ms =
      static_cast<int>(options_.max_wait.count()) + options_.connection.recv_timeout_ms;
}

FulcrumResolver::~FulcrumResolver() { Stop(); }

Status FulcrumResolver::Start(ResolverListener* listener) {
  if (options_.service.empty()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "fulcrum:// resolver needs a service: fulcrum://host:port/<service>");
  }
  if (thread_.joinable()) return Status::Error(StatusCode::kInvalidArgument, "started twice");
  listener_ = listener;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool FulcrumResolver::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void FulcrumResolver::Loop() {
  BlockSigpipeInThisThread();
  const std::string where =
      options_.connection.host + ":" + std::to_string(options_.connection.port);
  int64_t known = -1;  // never a real version: the first watch answers at once
  size_t last_size = 0;
  bool outage = false;
  auto backoff = options_.min_backoff;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    Status error;
    thrift::WatchResult result;
    if (!conn_) {
      auto conn = RegistryConnection::Open(options_.connection);
      if (conn.ok()) {
        std::lock_guard lock(conn_mu_);
        conn_ = std::move(conn).value();
      } else {
        error = conn.status();
      }
    }
    if (error.ok()) {
      try {
        conn_->client().watch(result, options_.service, known,
                              static_cast<int32_t>(options_.max_wait.count()));
      } catch (const thrift::RegistryError& e) {
        error = Status::Error(StatusCode::kApplication, "registry refused watch: " + e.message);
      } catch (const apache::thrift::TException& e) {
        error = Status::Error(StatusCode::kUnavailable,
                              "registry at " + where + " unreachable: " + e.what());
        std::lock_guard lock(conn_mu_);
        conn_.reset();
      }
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (!error.ok()) {
      if (!outage) {
        LOG(WARNING) << "fulcrum://" << where << "/" << options_.service << ": " << error.message()
                     << "; keeping the last " << last_size << " endpoints until it is back";
        listener_->OnError(error);
      }
      outage = true;
      if (!Wait(backoff)) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    if (outage) {
      LOG(INFO) << "fulcrum://" << where << "/" << options_.service << ": registry is back";
    }
    outage = false;
    backoff = options_.min_backoff;
    if (result.changed || known == -1) {
      known = result.snapshot.version;
      EndpointSet set = ToEndpointSet(result.snapshot);
      last_size = set.endpoints.size();
      listener_->OnUpdate(std::move(set));
    }
  }
}

void FulcrumResolver::Stop() {
  ScopedSigpipeBlock no_sigpipe;  // the caller's thread closes the connection
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard lock(conn_mu_);
    if (conn_) conn_->Interrupt();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(conn_mu_);
  conn_.reset();
}

}  // namespace fulcrum::registry_client
