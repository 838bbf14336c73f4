// Future<T>: the result of an asynchronous call (Channel::CallAsync, a generated client's
// async()), ready later.
//
//   fulcrum::Future<int64_t> f = client.async().add(1, 2);
//   int64_t sum = f.get();                                    // waits; rethrows the call's error
//
//   client.async().add(1, 2).then([](int64_t sum) { return sum * 2; });   // Future<int64_t>
//   client.async().add(1, 2).OnReady([](fulcrum::Future<int64_t> done) {
//     try { use(done.get()); } catch (const fulcrum::CallError& e) { ... }
//   });
//
// Errors are those of the synchronous call: a CallError, a declared exception, a
// TApplicationException. Continuations (then, OnReady) run on the thread that completes the
// future: the runtime's event thread, or the caller's when the future is already ready. Keep
// them short and never wait there for another call's future (that call's reply is read by the
// same thread).
//
// Cancel() gives up on the call: the future fails at once with a CallError (kCancelled); the
// call makes no further attempt, and its reply, when it comes, is dropped. Dropping a future is
// safe too: the call runs to its end and its result is discarded. Neither leaks a connection.
//
// A Future is a handle: copies share the result. The value is taken once: by get(), or by the
// continuation then() attaches (get() the future then() returns instead); taking it twice
// throws std::logic_error. An error may be rethrown any number of times. Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "fulcrum/clock.h"

namespace fulcrum {

template <class T>
class Future;
template <class T>
class Promise;

namespace internal {

template <class T>
using Stored = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
class FutureState {
 public:
  // True when this call completed the state (the first completion wins).
  bool Complete(std::optional<Stored<T>> value, std::exception_ptr error) {
    std::function<void()> done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ready_) return false;
      value_ = std::move(value);
      error_ = std::move(error);
      ready_ = true;
      done = std::move(on_ready_);
      on_cancel_ = nullptr;
      // Under the lock: a waiter may destroy this state as soon as it sees ready_.
      cv_.notify_all();
    }
    if (done) done();
    return true;
  }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return ready_; });
  }
  bool WaitUntil(TimePoint deadline) {
    std::unique_lock<std::mutex> lock(mu_);
    // The real clock: TimePoint is steady_clock's.
    return cv_.wait_until(lock, deadline, [&] { return ready_; });
  }
  bool ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_;
  }

  // Runs `f` once ready: now (on this thread) when it already is.
  void OnReady(std::function<void()> f) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ready_) {
        on_ready_ = std::move(f);
        return;
      }
    }
    f();
  }

  // What Cancel() asks of the call; cleared once ready.
  void SetCanceller(std::function<void()> f) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!ready_) on_cancel_ = std::move(f);
  }
  void Cancel(std::exception_ptr error) {
    std::function<void()> cancel;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ready_) return;
      cancel = std::move(on_cancel_);
    }
    if (cancel) cancel();  // before completing: the call stops first
    Complete(std::nullopt, std::move(error));
  }

  Stored<T> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) std::rethrow_exception(error_);
    // Loud, not a moved-from value that looks like an answer.
    if (taken_) throw std::logic_error("fulcrum::Future: the value was already taken");
    taken_ = true;
    return std::move(*value_);
  }
  std::exception_ptr error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  bool taken_ = false;
  std::optional<Stored<T>> value_;
  std::exception_ptr error_;
  std::function<void()> on_ready_;
  std::function<void()> on_cancel_;
};

// The error Cancel() completes a future with (defined with CallError, channel.cc).
std::exception_ptr CancelledError();

}  // namespace internal

template <class T>
class Future {
 public:
  using value_type = T;

  Future() = default;  // not valid(): get() on it is an error

  bool valid() const { return state_ != nullptr; }
  bool ready() const { return state_->ready(); }
  void wait() const { state_->Wait(); }
  // True when ready by then.
  bool wait_until(TimePoint deadline) const { return state_->WaitUntil(deadline); }
  bool wait_for(Duration d) const { return wait_until(Clock::Real().Now() + d); }

  // Waits, then returns the value or throws the call's error.
  T get() {
    state_->Wait();
    if constexpr (std::is_void_v<T>) {
      state_->Take();
    } else {
      return state_->Take();
    }
  }

  // Runs `f(Future<T>)` (the ready future) once ready.
  template <class F>
  void OnReady(F&& f) {
    state_->OnReady([state = state_, f = std::forward<F>(f)]() mutable { f(Future<T>(state)); });
  }

  // A future of `f(value)` (or `f()` for Future<void>): an error skips `f` and passes through;
  // what `f` throws becomes the new future's error.
  template <class F>
  auto then(F&& f) {
    using U = typename std::conditional_t<std::is_void_v<T>, std::invoke_result<F>,
                                          std::invoke_result<F, T>>::type;
    auto next = std::make_shared<internal::FutureState<U>>();
    state_->OnReady([state = state_, next, f = std::forward<F>(f)]() mutable {
      if (std::exception_ptr e = state->error()) {
        next->Complete(std::nullopt, e);
        return;
      }
      try {
        if constexpr (std::is_void_v<T> && std::is_void_v<U>) {
          state->Take();
          f();
          next->Complete(std::monostate{}, nullptr);
        } else if constexpr (std::is_void_v<T>) {
          state->Take();
          next->Complete(f(), nullptr);
        } else if constexpr (std::is_void_v<U>) {
          f(state->Take());
          next->Complete(std::monostate{}, nullptr);
        } else {
          next->Complete(f(state->Take()), nullptr);
        }
      } catch (...) {
        next->Complete(std::nullopt, std::current_exception());
      }
    });
    // Cancelling the continuation's future cancels the call.
    next->SetCanceller([state = state_] { state->Cancel(internal::CancelledError()); });
    return Future<U>(std::move(next));
  }

  // Gives up on the call (see the top of this file). No effect once ready.
  void Cancel() { state_->Cancel(internal::CancelledError()); }

 private:
  template <class>
  friend class Future;
  friend class Promise<T>;
  explicit Future(std::shared_ptr<internal::FutureState<T>> state) : state_(std::move(state)) {}

  std::shared_ptr<internal::FutureState<T>> state_;
};

// The producing side of a Future; for the runtime and for tests.
template <class T>
class Promise {
 public:
  Promise() : state_(std::make_shared<internal::FutureState<T>>()) {}

  Future<T> future() const { return Future<T>(state_); }

  template <class... V>
  bool SetValue(V&&... v) {
    return state_->Complete(internal::Stored<T>(std::forward<V>(v)...), nullptr);
  }
  bool SetError(std::exception_ptr e) { return state_->Complete(std::nullopt, std::move(e)); }
  // What the future's Cancel() should do to the work behind it.
  void OnCancel(std::function<void()> f) { state_->SetCanceller(std::move(f)); }

 private:
  std::shared_ptr<internal::FutureState<T>> state_;
};

// A future of every value of `futures`, in order, once all are ready: a fan-out's join. When
// any failed, it fails with the first failure (by position), after all are ready, so nothing is
// still running when it completes. Cancelling it cancels those not yet ready.
template <class T>
requires(!std::is_void_v<T>) Future<std::vector<T>> WhenAll(std::vector<Future<T>> futures) {
  struct Join {
    explicit Join(std::vector<Future<T>> f) : futures(std::move(f)), left(futures.size()) {}
    std::vector<Future<T>> futures;
    std::atomic<size_t> left;
    Promise<std::vector<T>> all;
  };
  auto join = std::make_shared<Join>(std::move(futures));
  Future<std::vector<T>> result = join->all.future();
  join->all.OnCancel([weak = std::weak_ptr<Join>(join)] {
    if (auto j = weak.lock()) {
      for (Future<T>& f : j->futures) f.Cancel();
    }
  });
  const auto finish = [](Join& j) {
    std::vector<T> values;
    values.reserve(j.futures.size());
    try {
      for (Future<T>& f : j.futures) values.push_back(f.get());
    } catch (...) {
      j.all.SetError(std::current_exception());
      return;
    }
    j.all.SetValue(std::move(values));
  };
  if (join->futures.empty()) finish(*join);
  for (Future<T>& f : join->futures) {
    f.OnReady([join, finish](Future<T>) {
      if (join->left.fetch_sub(1) == 1) finish(*join);
    });
  }
  return result;
}

}  // namespace fulcrum
