// consistent_hash: Maglev hashing (Eisenbud et al., NSDI 2016), weighted as Envoy does it.
// Each endpoint walks its own permutation of a prime-sized table, claiming free slots in turns
// proportional to its weight, until the table is full; a key picks table[key mod size]. Adding
// or removing one of N endpoints moves about 1/N of the keys, and a lookup is one table read.
//
// The key is PickArgs.hash (already mixed by Hash64). A call without a key gets a random slot,
// i.e. a weighted random pick. An excluded endpoint is skipped deterministically: the next
// slots of the table, then the endpoint list, so retries of one key agree across clients.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "balancers/backend_table.h"
#include "balancers/builtin.h"
#include "fulcrum/hash.h"

namespace fulcrum::balancers {
namespace {

// Primes; the first with at least 100 slots per endpoint is used, so that each endpoint's
// share stays within about 1% of its weight (Maglev's recommendation: size >> N). Changing the
// size remaps keys, so it only grows with the endpoint count in large steps.
constexpr uint64_t kTableSizes[] = {65537, 131071, 262147, 524287, 1048573};

constexpr uint64_t kOffsetSeed = 0x6d61676c65763031ULL;  // "maglev01"
constexpr uint64_t kSkipSeed = 0x6d61676c65763032ULL;    // "maglev02"

uint64_t TableSizeFor(size_t endpoints) {
  for (uint64_t size : kTableSizes) {
    if (size >= 100 * endpoints) return size;
  }
  return kTableSizes[std::size(kTableSizes) - 1];
}

class ConsistentHashPicker final : public Picker {
 public:
  ConsistentHashPicker(BackendTable table, const BalancerContext& ctx)
      : table_(std::move(table)), ctx_(ctx) {
    BuildTable();
  }

  PickResult Pick(const PickArgs& args) const override {
    const uint64_t key = args.has_hash ? args.hash : ctx_.rng().Next();
    const size_t slot = ScaleToRange(key, slots_.size());
    const Backend* b = table_.active()[slots_[slot]].backend;
    if (args.excluded.empty() || !args.IsExcluded(b)) return {b};
    return {NextAllowed(args, slot)};
  }

 private:
  const Backend* NextAllowed(const PickArgs& args, size_t slot) const {
    const size_t n = slots_.size();
    for (size_t k = 1; k <= 256; ++k) {
      const Backend* b = table_.active()[slots_[(slot + k) % n]].backend;
      if (!args.IsExcluded(b)) return b;
    }
    return table_.FirstAllowed(args, slots_[slot] + 1);
  }

  void BuildTable() {
    const std::span<const Entry> a = table_.active();
    const uint64_t m = TableSizeFor(a.size());
    // Visit endpoints in address order, not list order, so the table depends only on the set.
    std::vector<uint32_t> order(a.size());
    for (size_t i = 0; i < a.size(); ++i) order[i] = static_cast<uint32_t>(i);
    std::sort(order.begin(), order.end(), [&a](uint32_t x, uint32_t y) {
      return a[x].backend->address < a[y].backend->address;
    });
    struct Walker {
      uint32_t index;       // into a
      uint64_t next, skip;  // the permutation: next slot to try, then + skip (mod m)
      uint64_t filled;
      uint64_t weight;
    };
    std::vector<Walker> walkers;
    walkers.reserve(a.size());
    uint64_t max_weight = 0;
    for (uint32_t i : order) {
      const std::string& address = a[i].backend->address;
      walkers.push_back(Walker{i, Hash64(address, kOffsetSeed) % m,
                               Hash64(address, kSkipSeed) % (m - 1) + 1, 0, a[i].weight});
      max_weight = std::max<uint64_t>(max_weight, a[i].weight);
    }
    constexpr uint32_t kFree = UINT32_MAX;
    slots_.assign(m, kFree);
    // Round t: an endpoint takes a turn while it has claimed fewer than t * weight / max_weight
    // slots, so the heaviest takes one per round and the others proportionally fewer. Rather
    // than scanning every endpoint every round, a heap yields the turns in the same order
    // (round, then address): O(m log n) whatever the weights.
    using Turn = std::pair<uint64_t, uint32_t>;  // (round, position in walkers)
    auto round_of = [max_weight](const Walker& w) { return w.filled * max_weight / w.weight + 1; };
    std::priority_queue<Turn, std::vector<Turn>, std::greater<Turn>> turns;
    for (uint32_t p = 0; p < walkers.size(); ++p) turns.emplace(round_of(walkers[p]), p);
    for (uint64_t filled = 0; filled < m; ++filled) {
      const uint32_t p = turns.top().second;
      turns.pop();
      Walker& w = walkers[p];
      uint64_t slot;
      do {
        slot = w.next;
        w.next += w.skip;
        if (w.next >= m) w.next -= m;
      } while (slots_[slot] != kFree);
      slots_[slot] = w.index;
      ++w.filled;
      turns.emplace(round_of(w), p);
    }
  }

  const BackendTable table_;
  const BalancerContext ctx_;
  std::vector<uint32_t> slots_;  // indices into table_.active()
};

}  // namespace

std::unique_ptr<Balancer> NewConsistentHashBalancer(const BalancerContext& ctx) {
  return std::make_unique<StatelessBalancer<ConsistentHashPicker>>(ctx);
}

}  // namespace fulcrum::balancers
