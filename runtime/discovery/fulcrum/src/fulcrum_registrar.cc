#include "fulcrum_registrar.h"

#include <glog/logging.h>

#include <algorithm>

#include "fulcrum/random.h"
#include "fulcrum_resolver.h"

namespace fulcrum::registry_client {
namespace {

Status FromRegistryError(const thrift::RegistryError& e) {
  StatusCode code = StatusCode::kInternal;
  switch (e.code) {
    case thrift::ErrorCode::INVALID_ARGUMENT:
      code = StatusCode::kInvalidArgument;
      break;
    case thrift::ErrorCode::NOT_FOUND:
      code = StatusCode::kNotFound;
      break;
    case thrift::ErrorCode::UNAUTHENTICATED:
      code = StatusCode::kInvalidArgument;
      break;
    case thrift::ErrorCode::UNAVAILABLE:
      code = StatusCode::kUnavailable;
      break;
    default:
      break;
  }
  return Status::Error(code, "registry refused: " + e.message);
}

}  // namespace

FulcrumRegistrar::FulcrumRegistrar(FulcrumRegistrarOptions options)
    : options_(std::move(options)),
      interval_ms_(static_cast<int>(options_.heartbeat_interval.count())) {}

FulcrumRegistrar::~FulcrumRegistrar() { StopThread(); }

Status FulcrumRegistrar::Connect() {
  if (conn_) return Status::Ok();
  auto conn = RegistryConnection::Open(options_.connection);
  if (!conn.ok()) return conn.status();
  std::lock_guard lock(conn_mu_);
  conn_ = std::move(conn).value();
  return Status::Ok();
}

void FulcrumRegistrar::DropConnection() {
  std::lock_guard lock(conn_mu_);
  conn_.reset();
}

int FulcrumRegistrar::HeartbeatPortToUse() const {
  if (!options_.use_heartbeat_port) return 0;
  const int port = heartbeat_port_.load();
  if (port == 0) return 0;
  if (port == failed_heartbeat_port_ && Clock::Real().Now() < retry_heartbeat_port_at_) return 0;
  return port;
}

Status FulcrumRegistrar::ConnectHeartbeat(int port) {
  if (hb_conn_ && hb_conn_port_ == port) return Status::Ok();
  DropHeartbeatConnection();
  ConnectionOptions options = options_.connection;
  options.port = port;
  auto conn = RegistryConnection::Open(options);
  if (!conn.ok()) return conn.status();
  std::lock_guard lock(conn_mu_);
  hb_conn_ = std::move(conn).value();
  hb_conn_port_ = port;
  return Status::Ok();
}

void FulcrumRegistrar::DropHeartbeatConnection() {
  std::lock_guard lock(conn_mu_);
  hb_conn_.reset();
  hb_conn_port_ = 0;
}

Status FulcrumRegistrar::HeartbeatPortFailed(int port, const std::string& why) {
  DropHeartbeatConnection();
  heartbeat_port_in_use_ = 0;
  LOG(WARNING) << "cannot reach the registry's heartbeat port " << options_.connection.host << ":"
               << port << " (" << why << "): registering again on the main port "
               << options_.connection.port << " and heartbeating there; retrying port " << port
               << " in " << options_.heartbeat_port_retry.count() << " ms";
  failed_heartbeat_port_ = port;
  retry_heartbeat_port_at_ = Clock::Real().Now() + options_.heartbeat_port_retry;
  // The registry may have restarted on another heartbeat port: a new lease says which.
  lease_ = 0;
  reregistrations_.fetch_add(1);
  return Status::Ok();
}

Status FulcrumRegistrar::Unreachable(const apache::thrift::TException& e) {
  DropConnection();  // a transport error leaves the connection unusable
  return Status::Error(StatusCode::kUnavailable, "registry at " + options_.connection.host + ":" +
                                                     std::to_string(options_.connection.port) +
                                                     ": " + e.what());
}

Status FulcrumRegistrar::RegisterOnce() {
  Status s = Connect();
  if (!s.ok()) return s;
  try {
    thrift::Lease lease;
    conn_->client().register_instance(lease, options_.token, instance_);
    if (lease.heartbeat_interval_ms > 0) interval_ms_ = lease.heartbeat_interval_ms;
    heartbeat_port_ = lease.heartbeat_port;
    lease_ = lease.id;
    return Status::Ok();
  } catch (const thrift::RegistryError& e) {
    return FromRegistryError(e);
  } catch (const apache::thrift::TException& e) {
    return Unreachable(e);
  }
}

Status FulcrumRegistrar::HeartbeatOnce() {
  const int hb_port = HeartbeatPortToUse();
  RegistryConnection* conn = nullptr;
  if (hb_port != 0) {
    Status s = ConnectHeartbeat(hb_port);
    if (!s.ok()) return HeartbeatPortFailed(hb_port, s.message());
    conn = hb_conn_.get();
  } else {
    Status s = Connect();
    if (!s.ok()) return s;
    conn = conn_.get();
  }
  thrift::LoadReport load;
  if (callbacks_.load) {
    const LoadReport r = callbacks_.load();
    load.in_flight = r.in_flight;
    load.calls_per_second = r.calls_per_second;
    load.replication_position = r.replication_position;
    load.writes_quiesced = r.writes_quiesced;
    load.commit_position = r.commit_position;
  }
  thrift::Directives d;
  // Taken before sending: the master's lease runs from here, which is no later than the
  // moment the registry receives this heartbeat (its promotion delay counts from receipt).
  const TimePoint sent_at = Clock::Real().Now();
  try {
    conn->client().heartbeat(d, options_.token, lease_.load(), load);
  } catch (const thrift::RegistryError& e) {
    return FromRegistryError(e);
  } catch (const apache::thrift::TException& e) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Status::Error(StatusCode::kUnavailable, "stopping");
    }
    if (hb_port != 0) return HeartbeatPortFailed(hb_port, e.what());
    return Unreachable(e);
  }
  heartbeat_port_in_use_ = hb_port;
  if (d.heartbeat_interval_ms > 0) interval_ms_ = d.heartbeat_interval_ms;
  if (d.reregister) {
    LOG(INFO) << "registry does not know " << instance_.service_name << "/" << instance_.host << ":"
              << instance_.port << " any more (it restarted?): registering again";
    lease_ = 0;
    reregistrations_.fetch_add(1);
    return Status::Ok();
  }
  if (callbacks_.on_directives) {
    RegistrarDirectives out;
    out.drained = d.drained;
    out.role = ToInstanceRole(d.role);
    out.epoch = d.epoch;
    out.master_address = d.master_address;
    out.master_lease = std::chrono::milliseconds(std::max(0, d.master_lease_ms));
    out.sent_at = sent_at;
    out.stop_writes = d.stop_writes;
    callbacks_.on_directives(out);
  }
  return Status::Ok();
}

Status FulcrumRegistrar::Register(const ServiceInstance& instance, RegistrationOptions options) {
  ScopedSigpipeBlock no_sigpipe;  // the caller's thread
  if (thread_.joinable()) {
    return Status::Error(StatusCode::kInvalidArgument, "Register called twice");
  }
  instance_.service_name = instance.service;
  instance_.host = instance.host;
  instance_.port = instance.port;
  instance_.weight = static_cast<int32_t>(instance.weight);
  instance_.zone = instance.zone;
  instance_.metadata = instance.metadata;
  instance_.group = instance.group;
  instance_.priority = instance.priority;
  // This registration's incarnation, kept when it registers again (after a registry restart):
  // a new process (or a new Registrar) at the same address is told apart from this one.
  do {
    instance_.incarnation = static_cast<int64_t>(Random::ThreadLocal().Next() >> 1);
  } while (instance_.incarnation == 0);
  callbacks_ = std::move(options);
  Status s = RegisterOnce();
  if (!s.ok() && s.code() != StatusCode::kUnavailable) return s;  // refused: do not retry
  if (!s.ok()) {
    LOG(WARNING) << "cannot register " << instance.service << " now (" << s.message()
                 << "); retrying in the background";
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool FulcrumRegistrar::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void FulcrumRegistrar::Loop() {
  BlockSigpipeInThisThread();
  bool outage = lease_.load() == 0;
  auto backoff = options_.min_backoff;
  if (!outage && !Wait(std::chrono::milliseconds(interval_ms_.load()))) return;
  while (true) {
    const bool had_lease = lease_.load() != 0;
    Status s = had_lease ? HeartbeatOnce() : RegisterOnce();
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    if (!s.ok()) {
      if (!outage) {
        LOG(WARNING) << "registry unreachable or refusing (" << s.message()
                     << "); still serving, retrying every <= " << options_.max_backoff.count()
                     << " ms";
      }
      outage = true;
      if (!Wait(backoff)) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    if (outage) {
      LOG(INFO) << "registered " << instance_.service_name << " with the registry at "
                << options_.connection.host << ":" << options_.connection.port;
    }
    outage = false;
    backoff = options_.min_backoff;
    if (lease_.load() == 0) continue;  // asked to re-register: do it now
    if (!Wait(std::chrono::milliseconds(interval_ms_.load()))) return;
  }
}

void FulcrumRegistrar::StopThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  {
    std::lock_guard lock(conn_mu_);
    if (conn_) conn_->Interrupt();
    if (hb_conn_) hb_conn_->Interrupt();
  }
  if (thread_.joinable()) thread_.join();
}

Status FulcrumRegistrar::Deregister() {
  ScopedSigpipeBlock no_sigpipe;  // the caller's thread
  StopThread();
  const int64_t lease = lease_.exchange(0);
  if (lease == 0) return Status::Ok();
  auto call = [&](RegistryConnection& conn) {
    try {
      conn.client().deregister(options_.token, lease);
      return Status::Ok();
    } catch (const thrift::RegistryError& e) {
      return FromRegistryError(e);
    } catch (const apache::thrift::TException& e) {
      return Status::Error(StatusCode::kUnavailable, e.what());
    }
  };
  Status s = Status::Ok();
  const int hb_port = HeartbeatPortToUse();
  if (hb_port != 0) {
    DropHeartbeatConnection();  // possibly interrupted above
    s = ConnectHeartbeat(hb_port);
    if (s.ok()) s = call(*hb_conn_);
    DropHeartbeatConnection();
  }
  if (hb_port == 0 || s.code() == StatusCode::kUnavailable) {  // else: refused, not unreachable
    DropConnection();                                          // possibly interrupted above
    s = Connect();
    if (s.ok()) s = call(*conn_);
    DropConnection();
  }
  if (!s.ok()) {
    LOG(WARNING) << "could not deregister " << instance_.service_name << " (" << s.message()
                 << "); the registry will mark it down after its heartbeat timeout";
  }
  return s;
}

}  // namespace fulcrum::registry_client
