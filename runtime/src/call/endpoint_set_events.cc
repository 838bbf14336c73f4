#include "call/endpoint_set_events.h"

#include <algorithm>
#include <utility>

namespace fulcrum::internal {

void EndpointSetEvents::Resolved() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    resolved_ = true;
    discovery_error_.clear();
  }
  cv_.notify_all();
}

void EndpointSetEvents::DiscoveryFailed(std::string error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    discovery_error_ = std::move(error);
    resolved_ = true;  // a call waiting for the first set fails now, with this error
  }
  cv_.notify_all();
}

void EndpointSetEvents::Published() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  cv_.notify_all();
}

void EndpointSetEvents::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

bool EndpointSetEvents::WaitForNewer(TimePoint deadline, Duration at_most) {
  const TimePoint now = clock_.Now();
  if (now >= deadline) return false;
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = generation_;
  cv_.wait_for(lock, std::min<Duration>(at_most, deadline - now),
               [&] { return generation_ != seen || shutdown_; });
  return !shutdown_ && clock_.Now() < deadline;
}

bool EndpointSetEvents::WaitForFirst(TimePoint deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  if (resolved_ || shutdown_) return false;
  const TimePoint now = clock_.Now();
  if (now >= deadline) return false;
  cv_.wait_for(lock, deadline - now, [&] { return resolved_ || shutdown_; });
  return resolved_ && !shutdown_ && discovery_error_.empty();
}

bool EndpointSetEvents::shut_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdown_;
}

std::string EndpointSetEvents::NoEndpointReason() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_) return "no endpoint available (channel shut down)";
  if (!resolved_) return "no endpoint available: discovery delivered none before the deadline";
  if (!discovery_error_.empty()) {
    return "no endpoint available (discovery failed: " + discovery_error_ + ")";
  }
  return "no endpoint available";
}

}  // namespace fulcrum::internal
