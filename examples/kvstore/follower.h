// Follower: a slave's replication loop. While the registry says this replica is a slave and
// names a master, it long-polls the master's log (fetch) and applies what comes back, so the
// position the replica reports climbs with the master's. It idles while master or unassigned.
//
//   kvstore::Follower follower(replica, role, [&](const std::string& master,
//                                                 const kvstore::FetchRequest& r) {
//     return CallFetchOn(master, r);   // a Thrift call in the server, a direct call in tests
//   });
//   follower.Start();
//   ...
//   follower.Stop();
//
// Thread-safe: Start and Stop once each, from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "fulcrum/role.h"
#include "replica.h"

namespace kvstore {

using FetchFn =
    std::function<KvResult<FetchResponse>(const std::string& master, const FetchRequest& request)>;

struct FollowerOptions {
  fulcrum::Duration max_wait = std::chrono::milliseconds(500);    // long poll on the master
  fulcrum::Duration retry_delay = std::chrono::milliseconds(10);  // after a failed fetch
};

class Follower {
 public:
  Follower(Replica& replica, fulcrum::RoleState& role, FetchFn fetch, FollowerOptions options = {});
  ~Follower();  // Stop()s

  void Start();
  // Returns once the loop has ended (a fetch in flight finishes first: bounded by max_wait
  // and the fetch function's own timeout).
  void Stop();
  uint64_t fetches() const { return fetches_.load(); }

 private:
  void Loop();
  void Pause(fulcrum::Duration d);

  Replica& replica_;
  fulcrum::RoleState& role_;
  FetchFn fetch_;
  const FollowerOptions options_;
  std::atomic<uint64_t> fetches_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kvstore
