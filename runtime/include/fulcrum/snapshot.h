// Snapshot<T>: publish an immutable T to many readers without a lock on the read path.
//
//   Snapshot<Picker> picker;
//   picker.Publish(std::make_shared<const RoundRobinPicker>(...));   // control plane
//   std::shared_ptr<const Picker> p = picker.Read();                   // every call
//
// Thread-safe. Readers hold a shared_ptr, so a value stays alive until its last reader lets go
// even after a newer one is published.
//
// How: Publish bumps a version under a mutex. Each snapshot keeps one cache slot per thread
// (indexed by the thread's dense index, thread_index.h) holding the value and the version that
// thread last saw; Read is one atomic load, a slot lookup and a compare, and takes the mutex
// only when the version moved. Slots are per snapshot, so any number of snapshots (channels)
// in a process stay on the lock-free path. Why not a plain mutex or
// std::atomic<std::shared_ptr> (a spin bit in libstdc++ 12): on 2 cores with more busy threads
// than cores, a reader preempted inside the critical section makes every other caller wait out
// its time slice; end to end this halved throughput at 8 client threads and pushed p99 to 5 ms
// (docs/benchmarks.md).
//
// Cost of the cache: a slot keeps the value its thread last read alive until that thread (or
// the next thread given its index) reads again, or the snapshot is destroyed. Slots come in
// chunks of 16 threads (1 KiB), allocated on first use; a thread whose index is past
// kMaxThreads reads under the mutex.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "fulcrum/thread_index.h"

namespace fulcrum {

template <class T>
class Snapshot {
 public:
  static constexpr size_t kMaxThreads = 1024;  // threads with a lock-free slot

  Snapshot() = default;
  explicit Snapshot(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot() {
    for (auto& chunk : chunks_) delete[] chunk.load(std::memory_order_acquire);
  }

  std::shared_ptr<const T> Read() const {
    const uint64_t version = version_.load(std::memory_order_acquire);
    Slot* slot = ThisThreadsSlot();
    if (slot != nullptr && slot->version == version) [[likely]]
      return slot->value;
    std::shared_ptr<const T> value;
    uint64_t seen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      value = value_;
      seen = version_.load(std::memory_order_relaxed);
    }
    if (slot != nullptr) {
      slot->version = seen;
      // The slot's old value is released here, outside the lock.
      std::shared_ptr<const T> old = std::exchange(slot->value, value);
    }
    slow_reads_.fetch_add(1, std::memory_order_relaxed);
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

  // Reads that took the mutex (a new version, a thread's first read); for tests and benchmarks.
  uint64_t slow_reads() const { return slow_reads_.load(std::memory_order_relaxed); }

 private:
  // Written only by the thread whose index it is (an index passes to a new thread only after
  // the old one has exited, through a mutex in thread_index.cc).
  struct alignas(64) Slot {
    uint64_t version = 0;  // 0: empty (versions start at 1)
    std::shared_ptr<const T> value;
  };
  static constexpr size_t kChunk = 16;

  Slot* ThisThreadsSlot() const {
    const size_t index = internal::ThisThreadIndex();
    if (index >= kMaxThreads) return nullptr;  // kNoThreadIndex included
    std::atomic<Slot*>& chunk = chunks_[index / kChunk];
    Slot* slots = chunk.load(std::memory_order_acquire);
    if (slots == nullptr) [[unlikely]] {
      Slot* fresh = new Slot[kChunk];
      if (chunk.compare_exchange_strong(slots, fresh, std::memory_order_acq_rel)) {
        slots = fresh;
      } else {
        delete[] fresh;  // another thread of this chunk was first
      }
    }
    return &slots[index % kChunk];
  }

  std::atomic<uint64_t> version_{1};
  mutable std::array<std::atomic<Slot*>, kMaxThreads / kChunk> chunks_{};
  mutable std::atomic<uint64_t> slow_reads_{0};
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
};

}  // namespace fulcrum
