#include "transport/deadline_watchdog.h"

#include <sys/socket.h>

#include <thread>

#include <glog/logging.h>

#include "transport/connection_pool.h"

namespace fulcrum::internal {

DeadlineWatchdog& DeadlineWatchdog::Instance() {
  static DeadlineWatchdog* const instance = new DeadlineWatchdog();
  return *instance;
}

DeadlineWatchdog::DeadlineWatchdog() {
  std::thread([this] { Run(); }).detach();
}

void DeadlineWatchdog::Add(PooledConnection* c) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    c->watch_index_ = static_cast<int>(watched_.size());
    watched_.push_back(c);
    wake = watched_.size() == 1;
  }
  if (wake) wake_.notify_one();
}

void DeadlineWatchdog::Remove(PooledConnection* c) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto i = static_cast<size_t>(c->watch_index_);
  CHECK(i < watched_.size() && watched_[i] == c) << "connection not watched";
  watched_[i] = watched_.back();
  watched_[i]->watch_index_ = static_cast<int>(i);
  watched_.pop_back();
  c->watch_index_ = -1;
}

void DeadlineWatchdog::Wake() {
  // Taking the lock orders this against the thread's check-then-wait, so the notify is not
  // lost between them.
  std::lock_guard<std::mutex> lock(mu_);
  wake_.notify_one();
}

bool DeadlineWatchdog::ScanLocked() {
  bool in_flight = false;
  const Clock* clock = nullptr;
  int64_t now = 0;
  for (PooledConnection* c : watched_) {
    int64_t deadline = c->deadline_.load(std::memory_order_seq_cst);
    if (deadline <= 0) continue;  // idle, or already cut
    in_flight = true;
    if (c->clock_ != clock) {
      clock = c->clock_;
      now = ToNanos(clock->Now());
    }
    if (now < deadline) continue;
    // Claim the cut: if the call ends meanwhile, EndCall's exchange wins and nothing is cut.
    if (c->deadline_.compare_exchange_strong(deadline, PooledConnection::kCut,
                                             std::memory_order_acq_rel)) {
      // The socket is still open: PooledConnection's destructor removes it from watched_ (under
      // mu_, which this scan holds) before closing it, so the descriptor cannot be reused.
      ::shutdown(c->fd_, SHUT_RDWR);
    }
  }
  return in_flight;
}

void DeadlineWatchdog::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  int idle_scans = 0;
  for (;;) {
    if (ScanLocked()) {
      idle_scans = 0;
    } else if (++idle_scans >= kIdleTicks || watched_.empty()) {
      // Sleep until a call starts. Dekker-style with OnCallStart: set the flag, then look
      // again; a call that published its deadline before the flag was visible is seen by the
      // second scan, and one after it sees the flag and wakes us.
      sleeping_.store(true, std::memory_order_seq_cst);
      if (!ScanLocked()) {
        wake_.wait(lock);
      }
      sleeping_.store(false, std::memory_order_relaxed);
      idle_scans = 0;
      continue;
    }
    wake_.wait_for(lock, kTick);
  }
}

}  // namespace fulcrum::internal
