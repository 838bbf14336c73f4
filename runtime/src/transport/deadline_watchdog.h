// DeadlineWatchdog: enforces call deadlines on pooled connections without socket timeouts.
//
// A socket timeout (SO_RCVTIMEO) bounds each read, not the call: a server that trickles its
// reply a byte at a time keeps every read short and the call running long past its deadline
// (tests/runtime/channel_test.cc, DeadlineHoldsWhenTheServerTricklesItsReply). And a deadline
// that is not a fixed timeout (one inherited from the caller, a retry's remaining time) would
// cost two setsockopt() calls per call. So the channel leaves its sockets blocking with no
// timeout and publishes each call's deadline on its connection instead
// (PooledConnection::BeginCall, one atomic store); this process-wide thread scans the connections
// in calls and shuts down the socket of any call past its deadline. The blocked recv() or
// send() returns at once, and the channel reports kDeadlineExceeded (PooledConnection::EndCall
// tells it the watchdog cut the call). End to end this measured the same as socket timeouts
// (docs/benchmarks.md).
//
// Lateness: at most kTick after the deadline, plus scheduling delay. The thread sleeps on a
// condition variable while no call has been in flight for kIdleTicks scans, so an idle process
// does not wake up 200 times a second; the next BeginCall wakes it.
//
// Thread-safe. The instance lives until the process exits (never destroyed, so no thread is
// left touching a dead object during static destruction).
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "fulcrum/clock.h"

namespace fulcrum::internal {

class PooledConnection;

class DeadlineWatchdog {
 public:
  static constexpr Duration kTick = std::chrono::milliseconds(5);
  static constexpr int kIdleTicks = 40;  // 200 ms without a call in flight: go to sleep

  static DeadlineWatchdog& Instance();

  // Starts watching `c` (its deadline_ and clock_ are set by the caller). Locks.
  void Add(PooledConnection* c);
  // Stops watching `c`; after it returns the watchdog never touches `c` again. Locks.
  void Remove(PooledConnection* c);
  // Called after a call published its deadline: wakes the thread if it sleeps. Lock-free
  // unless the thread sleeps.
  void OnCallStart() {
    if (sleeping_.load(std::memory_order_seq_cst)) Wake();
  }

 private:
  DeadlineWatchdog();
  void Run();
  // Cuts every call past its deadline; returns whether any call is in flight.
  bool ScanLocked();
  void Wake();

  std::mutex mu_;
  std::condition_variable wake_;
  std::vector<PooledConnection*> watched_;  // each connection's watch_index_ is its position here
  std::atomic<bool> sleeping_{false};
};

}  // namespace fulcrum::internal
