// Every balancer under concurrent use, as the channel drives it: picking threads read the
// published picker, pick (sometimes with a key, sometimes excluding what they just got) and
// update EndpointStats, while one thread keeps building pickers from changing backend lists
// and publishing them through Snapshot<Picker>. Meant for ThreadSanitizer and
// AddressSanitizer builds; bounded by iteration counts, not time.
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "fulcrum/balancer.h"
#include "fulcrum/hash.h"
#include "fulcrum/random.h"
#include "fulcrum/slow_start.h"
#include "fulcrum/snapshot.h"

namespace fulcrum {
namespace {

constexpr int kPickers = 2;
constexpr int kUpdates = 100;
constexpr int kMinUpdates = 5;
// Wall-time budget per balancer after kMinUpdates updates: keeps the whole run near 10 s on a
// busy 2-core machine (and under TSan). It bounds the run; nothing asserts on time.
constexpr auto kBudget = std::chrono::milliseconds(800);
constexpr int kPicksPerUpdate = 300;  // picks (all threads) made on each published picker
constexpr size_t kPoolSize = 40;

class PickerStressTest : public ::testing::TestWithParam<std::string> {};

// `slow_start`: as the channel does while endpoints ramp, each picker is wrapped by
// WithSlowStart, and the endpoints that ramp have their latency restarted (as a re-admission
// does) while other threads record calls on them.
void PickWhileUpdating(const std::string& name, bool slow_start) {
  // Every backend a list can hold; a picked backend must be one of them and intact.
  BackendList pool;
  std::unordered_set<const Backend*> known;
  for (size_t i = 0; i < kPoolSize; ++i) {
    pool.push_back(MakeBackend(Endpoint{
        "10.0.2.1", static_cast<uint16_t>(5000 + i), static_cast<uint32_t>(i % 4), "", {}}));
    known.insert(pool.back().get());
  }

  auto balancer = CreateBalancer(name).value();  // Random::ThreadLocal() per thread
  const SlowStartOptions ramp{.window = std::chrono::seconds(10), .min_weight = 0.1};
  const BalancerContext ctx;  // the real clock, Random::ThreadLocal()
  Snapshot<Picker> snapshot(balancer->Update(pool));
  std::atomic<bool> done{false};
  std::atomic<int> bad{0};
  std::atomic<long> picks{0};

  auto pick_loop = [&](uint64_t seed) {
    SeededRandom rng(seed);
    const Clock& clock = Clock::Real();
    while (!done.load(std::memory_order_acquire)) {
      std::shared_ptr<const Picker> picker = snapshot.Read();
      PickArgs args;
      args.has_hash = rng.Uniform(2) == 0;
      args.hash = Hash64(rng.Uniform(1000));
      PickResult first = picker->Pick(args);
      picks.fetch_add(1, std::memory_order_relaxed);
      if (first.backend == nullptr) continue;  // an empty list was published
      const EndpointId tried[] = {IdOf(*first.backend)};
      args.excluded = tried;
      PickResult retry = picker->Pick(args);
      for (const Backend* b : {first.backend, retry.backend}) {
        if (b == nullptr || !known.contains(b) || b->stats == nullptr || b->address.empty()) {
          bad.fetch_add(1);
          continue;
        }
        b->stats->OnStart();
        b->stats->OnFinish(clock.Now(), std::chrono::microseconds(50 + rng.Uniform(500)),
                           rng.Uniform(20) != 0);
      }
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < kPickers; ++t) threads.emplace_back(pick_loop, 100 + t);

  SeededRandom rng(7);
  const auto stop_at = std::chrono::steady_clock::now() + kBudget;
  auto out_of_time = [&] { return std::chrono::steady_clock::now() > stop_at; };
  int updates = 0;
  for (; updates < kUpdates && (updates < kMinUpdates || !out_of_time()); ++updates) {
    const int u = updates;
    // A changing subset, now and then empty, and in a different order each time.
    BackendList list;
    if (u % 15 != 14) {
      for (const BackendPtr& b : pool) {
        if (rng.Uniform(3) != 0) list.push_back(b);
      }
      for (size_t i = list.size(); i > 1; --i) std::swap(list[i - 1], list[rng.Uniform(i)]);
    }
    std::shared_ptr<const Picker> picker = balancer->Update(list);
    if (slow_start) {
      for (const BackendPtr& b : list) {
        if (rng.Uniform(4) != 0) continue;
        b->stats->serving_since_ns.store(ToNanos(Clock::Real().Now()));
        b->stats->RestartLatency();
      }
      TimePoint ramp_end;
      picker = WithSlowStart(std::move(picker), list, ramp, ctx, &ramp_end);
    }
    snapshot.Publish(std::move(picker));
    // Let the pickers use this picker for a while (they never block, so this ends).
    const long target = picks.load() + kPicksPerUpdate;
    while (picks.load(std::memory_order_relaxed) < target && !out_of_time()) {
      std::this_thread::yield();
    }
  }
  done.store(true, std::memory_order_release);
  for (std::thread& t : threads) t.join();

  std::cout << name << (slow_start ? " (slow start)" : "") << ": " << updates << " updates, "
            << picks.load() << " picks\n";
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(updates, kMinUpdates);
  EXPECT_GT(picks.load(), 0);
  for (const BackendPtr& b : pool) EXPECT_EQ(b->stats->in_flight(), 0) << b->address;
}

TEST_P(PickerStressTest, PickWhileUpdating) { PickWhileUpdating(GetParam(), false); }

TEST_P(PickerStressTest, PickWhileUpdatingWithSlowStart) { PickWhileUpdating(GetParam(), true); }

INSTANTIATE_TEST_SUITE_P(EveryBalancer, PickerStressTest, ::testing::ValuesIn(BalancerNames()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace fulcrum
