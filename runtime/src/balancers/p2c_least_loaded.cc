// p2c_least_loaded: power of two choices on in-flight calls. Two endpoints, the one with fewer
// calls in flight wins. Picking the global minimum instead would send a burst of calls to the
// same endpoint before any of them shows up in its count; two random choices get almost all
// of the benefit without that herd (Mitzenmacher).
//
// With thread affinity: one of the two choices is the endpoint this thread picked last (its
// "home"), the other is random, and home wins a tie. A thread keeps talking to the same server
// while that server is no busier than a random other one, as a raw client with its own
// connection does. On a 2-core machine, where client and server threads share the cores, that
// mattered with 3 servers: affinity beat plain p2c in 5 runs out of 5 (median 0.974 vs 0.930
// of raw Thrift's throughput; docs/benchmarks.md). A home is kept for at most kAffinityPicks picks
// in a row, then the pick is a plain random pair again, so even one thread making one call at a
// time spreads its calls over every endpoint, and it is given up as soon as a call to it fails.
// Retries (picks with exclusions) are plain p2c.
#include <atomic>

#include "balancers/backend_table.h"
#include "balancers/builtin.h"

namespace fulcrum::balancers {
namespace {

constexpr uint32_t kAffinityPicks = 64;

// This thread's home in one picker. Pickers are told apart by a process-unique id, not their
// address, which a later picker may reuse.
struct Home {
  uint64_t picker = 0;
  size_t index = 0;
  uint32_t picks_left = 0;
};
thread_local Home t_home;

uint64_t NextPickerId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

class P2CLeastLoadedPicker final : public Picker {
 public:
  P2CLeastLoadedPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx), id_(NextPickerId()) {}

  PickResult Pick(const PickArgs& args) const override {
    const std::span<const Entry> a = table_.active();
    const size_t n = a.size();
    auto cost = [](const Entry& e) { return e.stats->in_flight(); };
    if (n < 2 || !args.excluded.empty()) {
      return {PickTwoChoices(table_, args, ctx_.rng(), cost)};
    }
    Home& home = t_home;
    const uint64_t r = ctx_.rng().Next();
    size_t i;
    size_t j;
    // A home whose last call failed is given up at once: the thread does not keep going back
    // to an endpoint that may be dead until the outlier detector ejects it.
    if (home.picker == id_ && home.picks_left > 0 && home.index < n &&
        a[home.index].stats->consecutive_failures() == 0) {
      i = home.index;
      j = ScaleToRange(r, n - 1);
      --home.picks_left;
    } else {
      // A fresh random pair, drawn in random order (the first wins a tie), as PickTwoChoices.
      const unsigned __int128 m = static_cast<unsigned __int128>(r) * n;
      i = static_cast<size_t>(m >> 64);
      j = ScaleToRange(static_cast<uint64_t>(m), n - 1);
      home = {id_, i, kAffinityPicks};
    }
    if (j >= i) ++j;
    if (cost(a[j]) < cost(a[i])) {
      home.index = j;
      home.picks_left = kAffinityPicks;
      return {a[j].backend};
    }
    return {a[i].backend};
  }

 private:
  const BackendTable table_;
  const BalancerContext ctx_;
  const uint64_t id_;
};

}  // namespace

std::unique_ptr<Balancer> NewP2CLeastLoadedBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<P2CLeastLoadedPicker>>(ctx);
}

}  // namespace fulcrum::balancers
