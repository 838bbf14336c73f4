#include "transport/io_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <vector>

#include <glog/logging.h>

namespace fulcrum::internal {

namespace {
constexpr uint64_t kWakeId = 0;
}  // namespace

IoLoop& IoLoop::Instance() {
  static IoLoop* const loop = new IoLoop();  // never destroyed (see the header)
  return *loop;
}

IoLoop::IoLoop()
    : epfd_(::epoll_create1(EPOLL_CLOEXEC)), wakefd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  PCHECK(epfd_ >= 0) << "epoll_create1";
  PCHECK(wakefd_ >= 0) << "eventfd";
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  PCHECK(::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) == 0) << "epoll_ctl";
  std::thread t([this] { Run(); });
  thread_id_ = t.get_id();
  t.detach();
}

void IoLoop::Add(uint64_t id, int fd, uint32_t events, std::shared_ptr<Handler> handler) {
  bool first;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = handlers_.empty();
    handlers_.emplace(id, std::move(handler));
  }
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.u64 = id;
  PCHECK(::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0) << "epoll_ctl add";
  if (first) {
    const uint64_t one = 1;
    (void)!::write(wakefd_, &one, sizeof one);  // start ticking
  }
}

void IoLoop::Modify(uint64_t id, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events | EPOLLET;
  ev.data.u64 = id;
  if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) PLOG(WARNING) << "epoll_ctl mod";
}

void IoLoop::Remove(uint64_t id, int fd) {
  ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
  std::shared_ptr<Handler> gone;  // destroyed outside the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = handlers_.find(id);
  if (it == handlers_.end()) return;
  gone = std::move(it->second);
  handlers_.erase(it);
}

void IoLoop::Run() {
  std::array<epoll_event, 256> events;
  std::vector<std::shared_ptr<Handler>> ready;
  TimePoint next_tick = Clock::Real().Now() + kTick;
  for (;;) {
    bool idle;
    {
      std::lock_guard<std::mutex> lock(mu_);
      idle = handlers_.empty();
    }
    int timeout_ms = -1;
    if (!idle) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(next_tick - Clock::Real().Now());
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left.count()));
    }
    const int n = ::epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) PLOG(FATAL) << "epoll_wait";
    ready.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == kWakeId) continue;
        auto it = handlers_.find(events[i].data.u64);
        ready.push_back(it == handlers_.end() ? nullptr : it->second);
      }
    }
    size_t r = 0;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeId) {
        uint64_t count;
        (void)!::read(wakefd_, &count, sizeof count);
        continue;
      }
      if (ready[r] != nullptr) ready[r]->OnEvents(events[i].events);
      ++r;
    }
    const TimePoint now = Clock::Real().Now();
    if (now >= next_tick) {
      next_tick = now + kTick;
      ready.clear();
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& [id, h] : handlers_) ready.push_back(h);
      }
      for (auto& h : ready) h->OnTick(now);
    }
    ready.clear();
  }
}

}  // namespace fulcrum::internal
