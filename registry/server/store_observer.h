// StoreObserver: what the Store tells the outside world as it happens, for the registry's
// metrics (registry_metrics.h). Called with the Store's lock held: implementations only
// count, and never call back into the Store.
//
// Implementations must be thread-safe.
#pragma once

#include <string>

#include "fulcrum/clock.h"

namespace fulcrum::registry {

class StoreObserver {
 public:
  virtual ~StoreObserver() = default;
  // An instance of `service` missed its heartbeats and is now DOWN.
  virtual void OnDown(const std::string& service) = 0;
  // A new master of `service` took a new epoch: by a planned switchover, or by election
  // (a group's first master, or a failover).
  virtual void OnPromotion(const std::string& service, bool planned) = 0;
  // A parked watch was woken by a change and returns it, `since_change` after the change.
  virtual void OnWatchDelivered(Duration since_change) = 0;
};

}  // namespace fulcrum::registry
