#include "fulcrum/role.h"

#include <glog/logging.h>

#include <charconv>

namespace fulcrum {
namespace {

constexpr std::string_view kNotMasterPrefix = "fulcrum: not master; master=";
constexpr std::string_view kEpochField = "; epoch=";

const char* RoleName(InstanceRole role) {
  switch (role) {
    case InstanceRole::kMaster:
      return "master";
    case InstanceRole::kSlave:
      return "slave";
    default:
      return "none";
  }
}

}  // namespace

RoleState::RoleState(const Clock& clock, Duration write_margin)
    : clock_(clock), write_margin_(write_margin) {}

void RoleState::Apply(const RegistrarDirectives& d) {
  RoleInfo next;
  next.role = d.role;
  next.epoch = d.epoch;
  next.master_address = d.master_address;
  std::vector<std::function<void(const RoleInfo&)>> listeners;
  {
    std::lock_guard lock(mu_);
    if (d.epoch < info_.epoch) {
      LOG(WARNING) << "ignoring a registry reply for epoch " << d.epoch << ": epoch " << info_.epoch
                   << " is already known";
      return;
    }
    // The lease first: a reply that demotes must stop writes before anything else sees it.
    if (d.role == InstanceRole::kMaster && d.master_lease > Duration::zero()) {
      stop_writes_.store(d.stop_writes);
      lease_end_ns_.store(ToNanos(d.sent_at + d.master_lease));
    } else {
      lease_end_ns_.store(0);
      stop_writes_.store(false);
    }
    if (next == info_) return;
    LOG(INFO) << "role: " << RoleName(info_.role) << " (epoch " << info_.epoch << ") -> "
              << RoleName(next.role) << " (epoch " << next.epoch << "), master "
              << (next.master_address.empty() ? "unknown" : next.master_address);
    info_ = next;
    listeners = listeners_;
  }
  for (const auto& listener : listeners) listener(next);
}

void RoleState::StopWrites() { stopped_for_good_.store(true); }

RoleInfo RoleState::info() const {
  std::lock_guard lock(mu_);
  return info_;
}

bool RoleState::is_master() const {
  std::lock_guard lock(mu_);
  return info_.role == InstanceRole::kMaster;
}

int64_t RoleState::epoch() const {
  std::lock_guard lock(mu_);
  return info_.epoch;
}

bool RoleState::Writable() const {
  if (stopped_for_good_.load() || stop_writes_.load()) return false;
  const int64_t end = lease_end_ns_.load();
  return end != 0 && ToNanos(clock_.Now() + write_margin_) < end;
}

bool RoleState::LeaseValid() const {
  if (stopped_for_good_.load()) return false;
  const int64_t end = lease_end_ns_.load();
  return end != 0 && ToNanos(clock_.Now()) < end;
}

Duration RoleState::LeaseRemaining() const {
  if (stopped_for_good_.load()) return Duration::zero();
  const int64_t end = lease_end_ns_.load();
  const int64_t now = ToNanos(clock_.Now());
  return end != 0 && now < end ? Duration(end - now) : Duration::zero();
}

bool RoleState::BeginWrite() {
  // Count first, then check: a switchover that sets stop_writes and then sees no write in
  // flight is sure that no write admitted before it is still running (seq_cst on both).
  writes_in_flight_.fetch_add(1);
  if (Writable()) return true;
  writes_in_flight_.fetch_sub(1);
  return false;
}

void RoleState::EndWrite() { writes_in_flight_.fetch_sub(1); }

bool RoleState::writes_quiesced() const {
  return (stop_writes_.load() || stopped_for_good_.load()) && writes_in_flight_.load() == 0;
}

void RoleState::OnChange(std::function<void(const RoleInfo&)> listener) {
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
}

std::string FormatNotMaster(const NotMaster& redirect) {
  std::string out(kNotMasterPrefix);
  out += redirect.master_address.empty() ? "-" : redirect.master_address;
  out += kEpochField;
  out += std::to_string(redirect.epoch);
  return out;
}

std::optional<NotMaster> ParseNotMaster(std::string_view message) {
  if (message.substr(0, kNotMasterPrefix.size()) != kNotMasterPrefix) return std::nullopt;
  message.remove_prefix(kNotMasterPrefix.size());
  const size_t sep = message.find(kEpochField);
  if (sep == std::string_view::npos) return std::nullopt;
  NotMaster out;
  const std::string_view address = message.substr(0, sep);
  if (address != "-") out.master_address = std::string(address);
  const std::string_view epoch = message.substr(sep + kEpochField.size());
  const auto [end, ec] = std::from_chars(epoch.data(), epoch.data() + epoch.size(), out.epoch);
  if (ec != std::errc() || end != epoch.data() + epoch.size()) return std::nullopt;
  return out;
}

}  // namespace fulcrum
