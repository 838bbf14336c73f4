#include "follower.h"

#include <glog/logging.h>

namespace kvstore {

Follower::Follower(Replica& replica, fulcrum::RoleState& role, FetchFn fetch,
                   FollowerOptions options)
    : replica_(replica), role_(role), fetch_(std::move(fetch)), options_(options) {}

Follower::~Follower() { Stop(); }

void Follower::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Follower::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Follower::Pause(fulcrum::Duration d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [this] { return stopping_; });
}

void Follower::Loop() {
  std::string last_error;
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    const fulcrum::RoleInfo info = role_.info();
    if (info.role != fulcrum::InstanceRole::kSlave || info.master_address.empty()) {
      Pause(std::chrono::milliseconds(5));
      continue;
    }
    const FetchRequest request = replica_.NextFetch(info.epoch, options_.max_wait);
    KvResult<FetchResponse> response = fetch_(info.master_address, request);
    fetches_.fetch_add(1);
    KvStatus s = response.status;
    if (s.ok()) s = replica_.ApplyFetch(request, std::move(response.value));
    if (s.ok()) {
      last_error.clear();
      continue;
    }
    // Log each distinct failure once (a dead master fails every few milliseconds).
    if (s.message != last_error) {
      LOG(WARNING) << "fetch from " << info.master_address << " (epoch " << info.epoch
                   << "): " << s.message;
      last_error = s.message;
    }
    Pause(options_.retry_delay);
  }
}

}  // namespace kvstore
