// Snapshot<T>: publish an immutable T to many readers without a lock on the read path.
//
//   Snapshot<Picker> picker;
//   picker.Publish(std::make_shared<const RoundRobinPicker>(...));   // control plane
//   std::shared_ptr<const Picker> p = picker.Read();                   // every call
//
// Thread-safe. Readers hold a shared_ptr, so a value stays alive until its last reader lets go
// even after a newer one is published.
//
// How: Publish bumps a version under a mutex. Each thread caches, per snapshot, the value and
// the version it saw; Read is one atomic load and a compare, and takes the mutex only when the
// version moved. Why not a plain mutex or std::atomic<std::shared_ptr> (a spin bit in
// libstdc++ 12): on 2 cores with more busy threads than cores, a reader preempted inside the
// critical section makes every other caller wait out its time slice; end to end this halved
// throughput at 8 client threads and pushed p99 to 5 ms (docs/benchmarks.md).
//
// Cost of the cache: each thread keeps up to kThreadCacheEntries values alive until it reads
// that snapshot again or the entry is reused; for pickers that is an old endpoint list.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

namespace fulcrum {
namespace internal {

struct SnapshotCacheEntry {
  uint64_t snapshot_id = 0;  // 0: empty
  uint64_t version = 0;
  std::shared_ptr<const void> value;
};

inline constexpr size_t kThreadCacheEntries = 8;

// Per-thread cache shared by every Snapshot type; entries are keyed by a process-unique id, so
// a destroyed snapshot's entry can never be mistaken for a new one at the same address.
inline std::array<SnapshotCacheEntry, kThreadCacheEntries>& ThreadSnapshotCache() {
  thread_local std::array<SnapshotCacheEntry, kThreadCacheEntries> cache;
  return cache;
}

inline uint64_t NextSnapshotId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace internal

template <class T>
class Snapshot {
 public:
  Snapshot() = default;
  explicit Snapshot(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}

  std::shared_ptr<const T> Read() const {
    const uint64_t version = version_.load(std::memory_order_acquire);
    auto& cache = internal::ThreadSnapshotCache();
    internal::SnapshotCacheEntry& entry = cache[id_ % cache.size()];
    if (entry.snapshot_id == id_ && entry.version == version) {
      return std::static_pointer_cast<const T>(entry.value);
    }
    std::shared_ptr<const T> value;
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      value = value_;
      seen = version_.load(std::memory_order_relaxed);
    }
    entry.snapshot_id = id_;
    entry.version = seen;
    entry.value = value;  // the old entry's value is released here, outside the lock
    return value;
  }

  void Publish(std::shared_ptr<const T> value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_.swap(value);
      version_.fetch_add(1, std::memory_order_release);
    }
    value.reset();  // the old value, destroyed (if this was its last holder) outside the lock
  }

 private:
  const uint64_t id_ = internal::NextSnapshotId();
  std::atomic<uint64_t> version_{0};
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
};

}  // namespace fulcrum
