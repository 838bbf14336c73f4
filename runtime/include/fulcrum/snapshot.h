// Snapshot<T>: publish an immutable T to many readers; a read only copies a shared_ptr.
//
//   Snapshot<Picker> picker;
//   picker.Publish(std::make_shared<const RoundRobinPicker>(...));   // control plane
//   std::shared_ptr<const Picker> p = picker.Read();                   // every call
//
// Thread-safe. Readers hold a shared_ptr, so a value stays alive until its last reader lets go
// even after a newer one is published.
//
// Why a mutex and not std::atomic<std::shared_ptr>: libstdc++ 12's atomic<shared_ptr> is a
// spin lock whose load() unlocks with a relaxed store, which ThreadSanitizer reports as a data
// race against the next store (every TSan run of a publishing test failed), and its spinning
// burns whole time slices when a reader is preempted holding it (picker_stress_test on 2 busy
// cores). The mutex is held only to copy one shared_ptr; bench/pick_bench.cc measures both
// (BM_ReadAndPick vs BM_AtomicReadAndPick): about +5 ns on one thread, equal or better on 2-4.
#pragma once

#include <memory>
#include <mutex>
#include <utility>

namespace fulcrum {

template <class T>
class Snapshot {
 public:
  Snapshot() = default;
  explicit Snapshot(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}

  std::shared_ptr<const T> Read() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  void Publish(std::shared_ptr<const T> value) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      value_.swap(value);
    }
    // The old value, if this was its last owner, is destroyed here, outside the lock.
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const T> value_;
};

}  // namespace fulcrum
