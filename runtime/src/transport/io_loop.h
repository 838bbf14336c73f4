// IoLoop: the process's event thread for pipelined connections (pipeline.h).
//
//   auto handler = std::make_shared<MyHandler>();        // IoLoop::Handler
//   IoLoop& loop = IoLoop::Instance();
//   uint64_t id = loop.NewId();
//   loop.Add(id, fd, EPOLLIN, handler);                  // OnEvents(events) from now on
//   loop.Modify(id, fd, EPOLLIN | EPOLLOUT);
//   loop.Remove(id, fd);                                 // no OnEvents after this returns
//                                                        // (unless from the loop thread)
//
// One thread waiting in epoll_wait. Handlers run on it, so they must not block. Every handler
// is also ticked (OnTick) every kTick while any is registered, for deadlines; an idle process
// (no handler) sleeps in epoll_wait with no timeout.
//
// Why epoll and not Boost.Asio: the pipelined connection writes from the caller's thread (one
// send() for whatever callers queued meanwhile, brpc's way) and only reads on this thread, so
// all it needs from a loop is readiness of a few sockets; Asio's reactor would add a handler
// allocation and a scheduler lock per operation to that.
//
// Thread-safe. The instance lives until the process exits (never destroyed: no thread is left
// touching a dead object during static destruction).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "fulcrum/clock.h"

namespace fulcrum::internal {

class IoLoop {
 public:
  static constexpr Duration kTick = std::chrono::milliseconds(5);

  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnEvents(uint32_t events) = 0;  // epoll events
    virtual void OnTick(TimePoint now) = 0;
  };

  static IoLoop& Instance();

  // A registration's id, for Add. Reserved first so the handler knows its id before its
  // first event (it may come before Add returns).
  uint64_t NewId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }
  // Watches `fd` for `events` (EPOLLIN, EPOLLOUT; edge-triggered is added) and calls
  // `handler`.
  void Add(uint64_t id, int fd, uint32_t events, std::shared_ptr<Handler> handler);
  void Modify(uint64_t id, int fd, uint32_t events);
  // Stops watching. The handler may still be running on the loop thread when this returns
  // from another thread (it holds its own reference meanwhile).
  void Remove(uint64_t id, int fd);
  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }

 private:
  IoLoop();
  void Run();

  const int epfd_;
  const int wakefd_;  // an eventfd: Add wakes the loop to start ticking
  std::thread::id thread_id_;
  std::atomic<uint64_t> next_id_{1};  // 0 is the wake-up eventfd's
  mutable std::mutex mu_;             // guards handlers_
  std::unordered_map<uint64_t, std::shared_ptr<Handler>> handlers_;
};

}  // namespace fulcrum::internal
