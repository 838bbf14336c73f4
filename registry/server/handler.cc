#include "server/handler.h"

#include <glog/logging.h>

namespace fulcrum::registry {
namespace {

thread_local std::string current_peer = "?";

thrift::ErrorCode::type ToErrorCode(StatusCode code) {
  switch (code) {
    case StatusCode::kInvalidArgument:
      return thrift::ErrorCode::INVALID_ARGUMENT;
    case StatusCode::kNotFound:
      return thrift::ErrorCode::NOT_FOUND;
    case StatusCode::kUnavailable:
      return thrift::ErrorCode::UNAVAILABLE;
    default:
      return thrift::ErrorCode::INTERNAL;
  }
}

void Check(const Status& s) {
  if (!s.ok()) ThrowRegistryError(s);
}

}  // namespace

const std::string& CurrentPeer() { return current_peer; }
void SetCurrentPeer(std::string peer) { current_peer = std::move(peer); }

void ThrowRegistryError(const Status& status) {
  thrift::RegistryError err;
  err.code = ToErrorCode(status.code());
  err.message = status.message();
  throw err;
}

void RegistryHandler::Authorize(const std::string& token, const char* call) const {
  if (auth_->Check(token)) return;
  if (options_.metrics != nullptr) options_.metrics->OnRefused(call);
  LOG(WARNING) << "refused " << call << " from " << CurrentPeer() << ": "
               << (token.empty() ? "no token" : "wrong token");
  thrift::RegistryError err;
  err.code = thrift::ErrorCode::UNAUTHENTICATED;
  err.message = std::string(call) + " needs the registry's token (" +
                (token.empty() ? "none was sent" : "the one sent does not match") + ")";
  throw err;
}

void RegistryHandler::register_instance(thrift::Lease& out, const std::string& token,
                                        const thrift::Instance& instance) {
  Authorize(token, "register_instance");
  StatusOr<thrift::Lease> lease = store_->Register(instance);
  if (!lease.ok()) {
    LOG(WARNING) << "invalid registration from " << CurrentPeer() << ": " << lease.status();
    ThrowRegistryError(lease.status());
  }
  VLOG(1) << "registered " << instance.service_name << "/"
          << Store::Address(instance.host, instance.port) << " from " << CurrentPeer();
  out = lease.value();
  out.heartbeat_port = heartbeat_port_.load(std::memory_order_relaxed);
  if (options_.metrics != nullptr) options_.metrics->OnRegister();
}

void RegistryHandler::heartbeat(thrift::Directives& out, const std::string& token, int64_t lease,
                                const thrift::LoadReport& load) {
  Authorize(token, "heartbeat");
  out = store_->Heartbeat(lease, load);
  if (options_.metrics != nullptr) options_.metrics->OnHeartbeat();
}

void RegistryHandler::deregister(const std::string& token, int64_t lease) {
  Authorize(token, "deregister");
  store_->Deregister(lease);
  if (options_.metrics != nullptr) options_.metrics->OnDeregister();
}

void RegistryHandler::lookup(thrift::ServiceSnapshot& out, const std::string& service_name) {
  if (service_name.empty()) {
    ThrowRegistryError(Status::Error(StatusCode::kInvalidArgument, "service name is empty"));
  }
  out = store_->Lookup(service_name);
}

void RegistryHandler::watch(thrift::WatchResult& out, const std::string& service_name,
                            int64_t known_version, int32_t max_wait_ms) {
  if (service_name.empty()) {
    ThrowRegistryError(Status::Error(StatusCode::kInvalidArgument, "service name is empty"));
  }
  if (max_wait_ms < 0) {
    ThrowRegistryError(
        Status::Error(StatusCode::kInvalidArgument,
                      "max_wait_ms " + std::to_string(max_wait_ms) + " is negative"));
  }
  const auto wait = std::min(std::chrono::milliseconds(max_wait_ms), options_.max_watch_wait);
  out = store_->Watch(service_name, known_version, wait);
  if (options_.metrics != nullptr) options_.metrics->OnWatchReturned(out.changed);
}

void RegistryHandler::list_services(std::vector<thrift::ServiceSummary>& out) {
  out = store_->ListServices();
}

void RegistryHandler::set_weight(const std::string& token, const std::string& service_name,
                                 const std::string& address, int32_t weight) {
  Authorize(token, "set_weight");
  Check(store_->SetWeight(service_name, address, weight));
  LOG(INFO) << CurrentPeer() << " set the weight of " << service_name << "/" << address << " to "
            << weight;
}

void RegistryHandler::drain(const std::string& token, const std::string& service_name,
                            const std::string& address) {
  Authorize(token, "drain");
  Check(store_->SetDrained(service_name, address, true));
  LOG(INFO) << CurrentPeer() << " drained " << service_name << "/" << address;
}

void RegistryHandler::undrain(const std::string& token, const std::string& service_name,
                              const std::string& address) {
  Authorize(token, "undrain");
  Check(store_->SetDrained(service_name, address, false));
  LOG(INFO) << CurrentPeer() << " undrained " << service_name << "/" << address;
}

void RegistryHandler::remove_instance(const std::string& token, const std::string& service_name,
                                      const std::string& address) {
  Authorize(token, "remove_instance");
  Check(store_->Remove(service_name, address));
  LOG(INFO) << CurrentPeer() << " removed " << service_name << "/" << address;
}

void RegistryHandler::promote(thrift::GroupState& out, const std::string& token,
                              const std::string& service_name, const std::string& address,
                              bool accept_data_loss) {
  Authorize(token, "promote");
  LOG(INFO) << CurrentPeer() << " asked to promote " << service_name << "/" << address
            << (accept_data_loss ? " accepting data loss" : "");
  StatusOr<thrift::GroupState> group = store_->Promote(service_name, address, accept_data_loss);
  if (!group.ok()) {
    LOG(WARNING) << "promote of " << service_name << "/" << address << " for " << CurrentPeer()
                 << " failed: " << group.status();
    ThrowRegistryError(group.status());
  }
  LOG(INFO) << CurrentPeer() << " promoted " << service_name << "/" << address << ": master of "
            << group->group << " for epoch " << group->epoch;
  out = group.value();
}

}  // namespace fulcrum::registry
