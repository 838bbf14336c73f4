#include "balancers/backend_table.h"

namespace fulcrum::balancers {
namespace {

// Stands in for the stats of a Backend built without any: reads as "idle, no samples".
EndpointStats& NoStats() {
  static EndpointStats* stats = new EndpointStats();
  return *stats;
}

}  // namespace

BackendTable::BackendTable(const BackendList& list) {
  owned_.reserve(list.size());
  bool any_weight = false;
  for (const BackendPtr& b : list) {
    if (b == nullptr) continue;
    owned_.push_back(b);
    any_weight = any_weight || b->endpoint.weight > 0;
  }
  active_.reserve(owned_.size());
  for (const BackendPtr& b : owned_) {
    Entry e{b.get(), b->stats != nullptr ? b->stats.get() : &NoStats(), b->endpoint.weight};
    if (!any_weight) {
      e.weight = 1;
      active_.push_back(e);
    } else if (e.weight == 0) {
      spare_.push_back(e);
    } else {
      active_.push_back(e);
    }
  }
}

const Backend* BackendTable::FirstAllowed(const PickArgs& args, size_t start) const {
  const size_t n = active_.size();
  start %= n;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = start + k < n ? start + k : start + k - n;
    if (!args.IsExcluded(active_[i].backend)) return active_[i].backend;
  }
  for (const Entry& e : spare_) {
    if (!args.IsExcluded(e.backend)) return e.backend;
  }
  return active_[start].backend;
}

const Backend* BackendTable::RandomAllowed(const PickArgs& args, Random& rng,
                                           bool by_weight) const {
  uint64_t total = 0;
  for (const Entry& e : active_) {
    if (!args.IsExcluded(e.backend)) total += by_weight ? e.weight : 1;
  }
  if (total == 0) return FirstAllowed(args, 0);
  uint64_t r = rng.Uniform(total);
  for (const Entry& e : active_) {
    if (args.IsExcluded(e.backend)) continue;
    const uint64_t w = by_weight ? e.weight : 1;
    if (r < w) return e.backend;
    r -= w;
  }
  return FirstAllowed(args, 0);  // unreachable: r < total
}

}  // namespace fulcrum::balancers
