// LiveSet: the objects of one kind alive in the process (channels, servers, registrations),
// for the scrape-time collectors and the admin pages.
//
//   LiveSet<ChannelMetrics>& set = LiveChannels();
//   set.Add(this);      // once fully constructed
//   set.Remove(this);   // before anything it reads is destroyed
//   set.ForEach([](const ChannelMetrics& c) { ... });   // holds the set's lock meanwhile
//
// Remove waits for a ForEach in progress, so an object removed in its destructor is never read
// half destroyed. ForEach callbacks must not add or remove.
//
// Thread-safe.
#pragma once

#include <algorithm>
#include <mutex>
#include <vector>

namespace fulcrum::internal {

template <class T>
class LiveSet {
 public:
  void Add(const T* item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(item);
  }
  void Remove(const T* item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.erase(std::remove(items_.begin(), items_.end(), item), items_.end());
  }
  template <class F>
  void ForEach(F f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const T* item : items_) f(*item);
  }

 private:
  mutable std::mutex mu_;
  std::vector<const T*> items_;  // guarded by mu_, in order of creation
};

class ChannelMetrics;
class ServerMetrics;
class RegistrationMetrics;

// The process's sets (never destroyed).
LiveSet<ChannelMetrics>& LiveChannels();
LiveSet<ServerMetrics>& LiveServers();
LiveSet<RegistrationMetrics>& LiveRegistrations();

}  // namespace fulcrum::internal
