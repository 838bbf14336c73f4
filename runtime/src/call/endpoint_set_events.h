// EndpointSetEvents: what a call that found no endpoint to send to waits on.
//
//   events.Published();                       // the channel published new pickers
//   if (events.WaitForNewer(deadline, 5ms)) { /* pick again */ }
//
// Two kinds of waits: before the resolver's first answer (WaitForFirst), and, for master-slave
// calls, a short wait for the next published set while a failover is under way (WaitForNewer).
// Shutdown wakes every waiter.
//
// Thread-safe.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "fulcrum/clock.h"

namespace fulcrum::internal {

class EndpointSetEvents {
 public:
  explicit EndpointSetEvents(const Clock& clock) : clock_(clock) {}

  // The resolver delivered a set: first-set waiters go on, the last discovery error is over.
  void Resolved();
  // The resolver failed: first-set waiters stop waiting and report `error`.
  void DiscoveryFailed(std::string error);
  // New pickers were published (an update, an ejection, a re-admission).
  void Published();
  void Shutdown();

  // Waits until the next Published(), `at_most`, or `deadline`, whichever comes first. False
  // when the deadline has passed or the channel is shut down.
  bool WaitForNewer(TimePoint deadline, Duration at_most);
  // Before the resolver's first answer: waits for it (or shutdown, or the deadline). True when
  // a set arrived, so picking again may find an endpoint.
  bool WaitForFirst(TimePoint deadline);

  bool shut_down() const;
  const Clock& clock() const { return clock_; }
  // "no endpoint available", and why when discovery knows.
  std::string NoEndpointReason() const;

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  bool shutdown_ = false;
  bool resolved_ = false;
  std::string discovery_error_;  // the resolver's last error, cleared by the next set
};

}  // namespace fulcrum::internal
