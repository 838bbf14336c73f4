// The metrics a call touches: counters and a latency histogram that cost a few uncontended
// atomic adds per call, and a table that finds a method's metrics without a lock or an
// allocation.
//
//   MethodTable<ServerMethodStats> table;
//   ServerMethodStats& m = table.Find("Echo.echo");   // lock-free once the name is known
//   m.OnCall(latency_ns);
//   HistogramData h = m.Latency();                    // at scrape time: sums the shards
//
// Why not prometheus::Histogram: prometheus-cpp 1.0.1's Histogram::Observe takes a mutex, and
// its Counter is an atomic<double> every thread updates with a compare-and-swap loop on one
// cache line. Here each thread adds to its own shard (ThisShard()) with a relaxed fetch_add on
// integers, and a scrape sums the shards. The figures still reach
// Prometheus through prometheus-cpp's data model and text serializer (metrics_collect.h).
//
// Thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fulcrum::internal {

// Upper bounds of the latency buckets, in nanoseconds: tens of microseconds (a loopback call)
// to ten seconds. The last bucket (+Inf) is implicit.
inline constexpr std::array<int64_t, 21> kLatencyBoundsNs = {
    10'000,        25'000,        50'000,        60'000,      100'000,     150'000,
    250'000,       500'000,       1'000'000,     2'500'000,   5'000'000,   10'000'000,
    25'000'000,    50'000'000,    100'000'000,   250'000'000, 500'000'000, 1'000'000'000,
    2'500'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr size_t kLatencyBuckets = kLatencyBoundsNs.size() + 1;
// The same in seconds, written out so that Prometheus' `le` labels read 6e-05, not the
// nearest double to 60000 / 1e9 (prometheus-cpp prints 16 digits: 75 us would read
// 7.499999999999999e-05, which is why there is no 75 us bound).
inline constexpr std::array<double, kLatencyBoundsNs.size()> kLatencyBoundsSeconds = {
    10e-6, 25e-6, 50e-6, 60e-6,  100e-6, 150e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
    10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1.0,    2.5,    5.0,  10.0};

// The bucket a latency falls in (Prometheus buckets are "less than or equal").
inline size_t LatencyBucket(int64_t ns) {
  size_t i = 0;
  while (i < kLatencyBoundsNs.size() && ns > kLatencyBoundsNs[i]) ++i;
  return i;
}

inline constexpr size_t kShards = 8;
// The calling thread's shard: threads take shards in turn as they first record. Not
// ThisThreadIndex(): that hands a thread's index to the next new thread once it exits, and a
// server thread taking an index for its metrics would change which slot a client thread in the
// same process gets (connection_pool.h parks connections by index).
inline size_t ThisShard() {
  static std::atomic<size_t> next{0};
  thread_local size_t shard = kShards;  // constant-initialized: no TLS guard on the fast path
  if (shard == kShards) shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

// A histogram's figures at one moment (per bucket, not cumulative).
struct HistogramData {
  std::array<uint64_t, kLatencyBuckets> buckets{};
  uint64_t sum_ns = 0;

  uint64_t count() const {
    uint64_t n = 0;
    for (uint64_t b : buckets) n += b;
    return n;
  }
  HistogramData& operator+=(const HistogramData& o) {
    for (size_t i = 0; i < kLatencyBuckets; ++i) buckets[i] += o.buckets[i];
    sum_ns += o.sum_ns;
    return *this;
  }
  // The q-quantile in seconds, interpolated within its bucket (the +Inf bucket answers its
  // lower bound); 0 without samples. For status pages, not for alerting.
  double QuantileSeconds(double q) const;
};

// N counters plus a latency histogram, sharded by thread.
template <size_t N>
class ShardedStats {
 public:
  void Add(size_t shard, size_t counter, uint64_t n) {
    shards_[shard].counters[counter].fetch_add(n, std::memory_order_relaxed);
  }
  void Observe(size_t shard, int64_t ns) {
    Shard& s = shards_[shard];
    s.buckets[LatencyBucket(ns)].fetch_add(1, std::memory_order_relaxed);
    s.sum_ns.fetch_add(static_cast<uint64_t>(ns < 0 ? 0 : ns), std::memory_order_relaxed);
  }
  uint64_t Sum(size_t counter) const {
    uint64_t n = 0;
    for (const Shard& s : shards_) n += s.counters[counter].load(std::memory_order_relaxed);
    return n;
  }
  HistogramData Latency() const {
    HistogramData h;
    for (const Shard& s : shards_) {
      for (size_t i = 0; i < kLatencyBuckets; ++i) {
        h.buckets[i] += s.buckets[i].load(std::memory_order_relaxed);
      }
      h.sum_ns += s.sum_ns.load(std::memory_order_relaxed);
    }
    return h;
  }

 private:
  struct alignas(64) Shard {
    std::array<std::atomic<uint64_t>, N> counters{};
    std::array<std::atomic<uint64_t>, kLatencyBuckets> buckets{};
    std::atomic<uint64_t> sum_ns{0};
  };
  std::array<Shard, kShards> shards_{};
};

// Finds the stats of a method by name: lock-free and allocation-free once the name has been
// seen (a hash of the name, then a compare). At most kMaxMethods names get their own entry;
// more share one named kOtherMethod, so a caller inventing names cannot grow the series
// without bound. After kMaxSlots distinct names (entries and aliases) a new name takes a mutex
// on every lookup: the table never grows.
template <class Stats>
class MethodTable {
 public:
  static constexpr size_t kMaxMethods = 64;
  static constexpr const char* kOtherMethod = "other";

  Stats& Find(std::string_view name) {
    const uint64_t h = HashName(name);
    for (size_t i = 0; i < kSlots; ++i) {
      const Entry* e = slots_[(h + i) & (kSlots - 1)].load(std::memory_order_acquire);
      if (e == nullptr) break;
      if (e->hash == h && e->name == name) return *e->stats;
    }
    return Insert(name, h);
  }

  // f(name, stats) for every method with its own entry, and for kOtherMethod once used.
  template <class F>
  void ForEach(F f) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) {
      if (e->stats == &e->own) f(e->name, e->own);
    }
    if (other_used_) f(std::string_view(kOtherMethod), other_);
  }

 private:
  static constexpr size_t kSlots = 256;  // a power of two
  static constexpr size_t kMaxSlots = kSlots / 2;

  struct Entry {
    std::string name;
    uint64_t hash = 0;
    Stats own;
    Stats* stats = &own;  // &own, or the shared "other" stats
  };

  static uint64_t HashName(std::string_view name) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (char c : name) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    return h;
  }

  Stats& Insert(std::string_view name, uint64_t h) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& e : entries_) {
      if (e->hash == h && e->name == name) return *e->stats;  // added meanwhile, or no slot
    }
    const bool own = entries_.size() - aliases_ < kMaxMethods;
    if (!own && entries_.size() >= kMaxSlots) {
      other_used_ = true;
      return other_;  // the table is full: this name takes the mutex every time
    }
    auto e = std::make_unique<Entry>();
    e->name = std::string(name);
    e->hash = h;
    if (!own) {
      e->stats = &other_;
      ++aliases_;
      other_used_ = true;
    }
    Entry* added = e.get();
    entries_.push_back(std::move(e));
    for (size_t i = 0; i < kSlots; ++i) {
      std::atomic<const Entry*>& slot = slots_[(h + i) & (kSlots - 1)];
      if (slot.load(std::memory_order_relaxed) == nullptr) {
        slot.store(added, std::memory_order_release);
        break;
      }
    }
    return *added->stats;
  }

  std::array<std::atomic<const Entry*>, kSlots> slots_{};
  mutable std::mutex mu_;  // guards the three below; never taken on a known name
  std::vector<std::unique_ptr<Entry>> entries_;
  size_t aliases_ = 0;
  bool other_used_ = false;
  Stats other_;
};

}  // namespace fulcrum::internal
