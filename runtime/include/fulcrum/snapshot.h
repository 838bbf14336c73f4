// Snapshot<T>: publish an immutable T to many readers without a lock on the read path.
//
//   Snapshot<Picker> picker;
//   picker.Publish(std::make_shared<const RoundRobinPicker>(...));   // control plane
//   std::shared_ptr<const Picker> p = picker.Read();                   // every call
//
// Thread-safe. Readers hold a shared_ptr, so a value stays alive until its last reader lets go
// even after a newer one is published.
#pragma once

#include <atomic>
#include <memory>

namespace fulcrum {

template <class T>
class Snapshot {
 public:
  Snapshot() = default;
  explicit Snapshot(std::shared_ptr<const T> initial) : value_(std::move(initial)) {}

  std::shared_ptr<const T> Read() const { return value_.load(std::memory_order_acquire); }
  void Publish(std::shared_ptr<const T> value) {
    value_.store(std::move(value), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const T>> value_;
};

}  // namespace fulcrum
