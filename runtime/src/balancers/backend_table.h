// BackendTable: the part every built-in picker shares. It owns the backend list (so a backend
// stays valid while anyone holds the picker), splits it by weight, and does the slow
// "excluded" fallback.
//
// Weight rule, the same for every built-in balancer: a zero-weight endpoint gets nothing while
// any endpoint has a non-zero weight ("spare"), and an all-zero set is treated as all-equal, so
// a misconfigured weight never fails every call.
//
// Thread-safety: immutable after construction; any number of threads may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fulcrum/balancer.h"
#include "fulcrum/endpoint_stats.h"
#include "fulcrum/random.h"

namespace fulcrum::balancers {

struct Entry {
  const Backend* backend = nullptr;
  // Cached so a pick reads the atomics with one dependent load less. Never null: backends
  // built without stats point at a shared, never-updated EndpointStats.
  EndpointStats* stats = nullptr;
  // The endpoint's weight; 1 for every entry of an all-zero set.
  uint32_t weight = 1;
};

class BackendTable {
 public:
  // Null entries in `list` are dropped (bad input must not crash a pick).
  explicit BackendTable(const BackendList& list);

  bool empty() const { return active_.empty(); }
  // The endpoints to balance over: the non-zero-weight ones, or all of them if all are zero.
  std::span<const Entry> active() const { return active_; }
  // Zero-weight endpoints among non-zero ones: used only when nothing active is left.
  std::span<const Entry> spare() const { return spare_; }

  // Slow path for a pick whose first choice is excluded: the first active backend at or after
  // `start` (wrapping) that is not excluded, else a spare one, else the active one at `start`
  // (everything was tried; trying again beats failing the call). Deterministic.
  const Backend* FirstAllowed(const PickArgs& args, size_t start) const;

  // Slow path for randomised pickers: a random active backend that is not excluded, drawn
  // uniformly or by weight (exactly, O(n)), else what FirstAllowed gives.
  const Backend* RandomAllowed(const PickArgs& args, Random& rng, bool by_weight) const;

 private:
  BackendList owned_;
  std::vector<Entry> active_;
  std::vector<Entry> spare_;
};

// Returns the picker for `backends`: EmptyPicker() when nothing usable is in it, else
// std::make_shared<const P>(table, args...).
template <class P, class... Args>
std::shared_ptr<const Picker> MakePicker(const BackendList& backends, Args&&... args) {
  BackendTable table(backends);
  if (table.empty()) return EmptyPicker();
  return std::make_shared<const P>(std::move(table), std::forward<Args>(args)...);
}

// A balancer with no state between updates: each Update builds a fresh P from the list.
// P's constructor takes (BackendTable, const BalancerContext&).
template <class P>
class StatelessBalancer final : public Balancer {
 public:
  explicit StatelessBalancer(const BalancerContext& ctx) : ctx_(ctx) {}
  std::shared_ptr<const Picker> Update(const BackendList& backends) override {
    return MakePicker<P>(backends, ctx_);
  }

 private:
  const BalancerContext ctx_;
};

// Index in [0, n) from a 64-bit random or hash value, without a division (Lemire).
inline size_t ScaleToRange(uint64_t x, size_t n) {
  return static_cast<size_t>((static_cast<unsigned __int128>(x) * n) >> 64);
}

// Power of two choices: draws two distinct active entries and returns the one with the lower
// cost. The pair is drawn in random order and the first wins a tie, so ties are broken at
// random. `cost` is any callable Entry -> number.
//
// With `probe_idle`, one pick in kProbeOneIn takes the first candidate whatever its cost if it
// has no call in flight. Latency costs only change when an endpoint answers, so without this an
// endpoint that was slow once would never be measured again, even after it recovers.
inline constexpr uint64_t kProbeOneIn = 128;

template <class Cost>
const Backend* PickTwoChoices(const BackendTable& table, const PickArgs& args, Random& rng,
                              Cost&& cost, bool probe_idle = false) {
  const std::span<const Entry> a = table.active();
  const size_t n = a.size();
  if (n == 1) {
    if (args.excluded.empty() || !args.IsExcluded(a[0].backend)) return a[0].backend;
    return table.FirstAllowed(args, 0);
  }
  // One draw gives both indices: the high half of r*n is the first, and the low half, still
  // uniform, scaled to n-1 gives the second (skipping the first makes them distinct).
  const uint64_t r = rng.Next();
  const unsigned __int128 m = static_cast<unsigned __int128>(r) * n;
  const size_t i = static_cast<size_t>(m >> 64);
  size_t j = ScaleToRange(static_cast<uint64_t>(m), n - 1);
  if (j >= i) ++j;
  if (!args.excluded.empty()) {
    const bool ei = args.IsExcluded(a[i].backend);
    const bool ej = args.IsExcluded(a[j].backend);
    if (ei && ej) return table.RandomAllowed(args, rng, /*by_weight=*/false);
    if (ei) return a[j].backend;
    if (ej) return a[i].backend;
  }
  // The low bits of r barely influence i (the high half of r*n), so they make the coin.
  if (probe_idle && r % kProbeOneIn == 0 && a[i].stats->in_flight() == 0 &&
      (args.excluded.empty() || !args.IsExcluded(a[i].backend))) {
    return a[i].backend;
  }
  return cost(a[j]) < cost(a[i]) ? a[j].backend : a[i].backend;
}

}  // namespace fulcrum::balancers
