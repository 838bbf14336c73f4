#include "etcd_registrar.h"

#include <glog/logging.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "etcd_codec.h"
#include "fulcrum/random.h"

namespace fulcrum::etcd {

EtcdRegistrar::EtcdRegistrar(EtcdRegistrarOptions options)
    : options_(std::move(options)),
      http_(options_.endpoints, options_.request_timeout, options_.credentials, options_.tls) {}

EtcdRegistrar::~EtcdRegistrar() { StopThread(); }

std::chrono::milliseconds EtcdRegistrar::KeepAliveInterval() const {
  const int64_t ttl = std::max<int64_t>(1, granted_ttl_s_.load());
  return std::chrono::milliseconds(ttl * 1000 / 3);
}

bool EtcdRegistrar::registered() const {
  return registered_.load() &&
         std::chrono::steady_clock::now().time_since_epoch().count() < alive_until_ns_.load();
}

void EtcdRegistrar::AliveFor(std::chrono::steady_clock::time_point sent, int64_t ttl_s) {
  alive_until_ns_ = (sent + std::chrono::seconds(ttl_s)).time_since_epoch().count();
}

Status EtcdRegistrar::RegisterOnce() {
  const auto sent = std::chrono::steady_clock::now();
  StatusOr<std::string> granted =
      http_.Post("/v3/lease/grant", nlohmann::json{{"TTL", options_.ttl_s}}.dump());
  if (!granted.ok()) return granted.status();
  StatusOr<LeaseResult> lease = ParseLeaseResponse(*granted);
  if (!lease.ok()) return lease.status();
  if (lease->id == 0 || lease->ttl_s <= 0) {
    return Status::Error(StatusCode::kInternal, "etcd granted no lease: " + *granted);
  }
  nlohmann::json put = {{"key", Base64Encode(key_)},
                        {"value", Base64Encode(EncodeInstance(instance_, incarnation_))},
                        {"lease", std::to_string(lease->id)}};
  StatusOr<std::string> done = http_.Post("/v3/kv/put", put.dump());
  if (!done.ok()) return done.status();  // the lease expires by itself
  granted_ttl_s_ = lease->ttl_s;
  lease_ = lease->id;
  AliveFor(sent, lease->ttl_s);
  registered_ = true;
  return Status::Ok();
}

Status EtcdRegistrar::KeepAliveOnce(bool* gone) {
  *gone = false;
  if (callbacks_.load) callbacks_.load();  // etcd has nowhere to put a load report
  const auto sent = std::chrono::steady_clock::now();
  StatusOr<std::string> answer = http_.Post(
      "/v3/lease/keepalive", nlohmann::json{{"ID", std::to_string(lease_.load())}}.dump());
  if (!answer.ok()) return answer.status();
  StatusOr<LeaseResult> lease = ParseLeaseResponse(*answer);
  if (!lease.ok()) return lease.status();
  if (lease->ttl_s <= 0) {
    *gone = true;
    return Status::Ok();
  }
  granted_ttl_s_ = lease->ttl_s;
  AliveFor(sent, lease->ttl_s);
  if (callbacks_.on_directives) callbacks_.on_directives(RegistrarDirectives{});
  return Status::Ok();
}

Status EtcdRegistrar::Register(const ServiceInstance& instance, RegistrationOptions options) {
  if (thread_.joinable()) {
    return Status::Error(StatusCode::kInvalidArgument, "Register called twice");
  }
  if (!instance.group.empty()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "etcd:// registers stateless services only: instance group '" +
                             instance.group + "' is master-slave, which needs fulcrum-registry");
  }
  if (instance.service.empty() || instance.service.find('/') != std::string::npos) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "bad service name '" + instance.service + "' (empty or has '/')");
  }
  if (instance.host.empty() || instance.port == 0) {
    return Status::Error(StatusCode::kInvalidArgument, "instance needs a host and a port");
  }
  instance_ = instance;
  // This registration's incarnation, kept when it registers again after losing its lease: a
  // new process at the same address is told apart from this one (Endpoint::incarnation).
  do {
    incarnation_ = Random::ThreadLocal().Next();
  } while (incarnation_ == 0);
  key_ = InstanceKey(options_.prefix, instance.service,
                     EtcdAddress{instance.host, instance.port}.ToString());
  callbacks_ = std::move(options);
  // The instance is valid, so whatever etcd says now (unreachable, no leader yet after a
  // restart, a lease that expired between grant and put) may pass: keep trying.
  Status s = RegisterOnce();
  if (!s.ok()) {
    LOG(WARNING) << "cannot register " << key_ << " in etcd now (" << s.message()
                 << "); retrying in the background";
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool EtcdRegistrar::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void EtcdRegistrar::Loop() {
  bool outage = lease_.load() == 0;
  auto backoff = options_.min_backoff;
  if (!outage && !Wait(KeepAliveInterval())) return;
  while (true) {
    bool gone = false;
    const bool had_lease = lease_.load() != 0;
    Status s = had_lease ? KeepAliveOnce(&gone) : RegisterOnce();
    if (http_.cancelled()) return;
    if (!s.ok()) {
      if (!outage) {
        LOG(WARNING) << "etcd unreachable or refusing (" << s.message() << "); " << key_
                     << " still serving, retrying every <= " << options_.max_backoff.count()
                     << " ms";
      }
      outage = true;
      if (!Wait(std::min(backoff, KeepAliveInterval()))) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    if (gone) {
      LOG(INFO) << "etcd lease of " << key_ << " is gone (expired?): registering again";
      registered_ = false;
      lease_ = 0;
      reregistrations_.fetch_add(1);
      continue;
    }
    if (outage) LOG(INFO) << "registered " << key_ << " in etcd at " << http_.current_address();
    outage = false;
    backoff = options_.min_backoff;
    if (!Wait(KeepAliveInterval())) return;
  }
}

void EtcdRegistrar::StopThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  http_.Cancel();
  if (thread_.joinable()) thread_.join();
}

Status EtcdRegistrar::Deregister() {
  StopThread();
  registered_ = false;
  const int64_t lease = lease_.exchange(0);
  if (lease == 0) return Status::Ok();
  EtcdHttpClient http(options_.endpoints, options_.request_timeout, options_.credentials,
                      options_.tls);
  StatusOr<std::string> revoked =
      http.Post("/v3/lease/revoke", nlohmann::json{{"ID", std::to_string(lease)}}.dump());
  if (revoked.ok() || revoked.status().code() == StatusCode::kNotFound) return Status::Ok();
  LOG(WARNING) << "could not revoke the etcd lease of " << key_ << " (" << revoked.status()
               << "); the key goes when the lease expires in <= " << granted_ttl_s_.load() << " s";
  return Status::Error(StatusCode::kUnavailable,
                       "could not deregister " + key_ + ": " + revoked.status().message());
}

}  // namespace fulcrum::etcd
