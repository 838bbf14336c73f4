// Pick cost per balancer at 3, 100 and 1000 endpoints, on 1 and 2 threads; and the cost of
// reading the published picker from a Snapshot, which every call pays as well.
//
//   build/bench/fulcrum_pick_bench --benchmark_filter=round_robin
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "fulcrum/balancer.h"
#include "fulcrum/hash.h"
#include "fulcrum/snapshot.h"

namespace fulcrum {
namespace {

const char* const kBalancers[] = {"random",
                                  "weighted_random",
                                  "round_robin",
                                  "weighted_round_robin",
                                  "least_response_time",
                                  "p2c_least_loaded",
                                  "peak_ewma",
                                  "consistent_hash"};

// Pickers are built once per (balancer, size) and shared by the benchmark's threads, as a
// channel's threads share one picker.
std::shared_ptr<const Picker> SharedPicker(const std::string& name, int endpoints) {
  static std::mutex mu;
  static auto* cache = new std::map<std::pair<std::string, int>, std::shared_ptr<const Picker>>();
  std::lock_guard<std::mutex> lock(mu);
  auto& picker = (*cache)[{name, endpoints}];
  if (picker == nullptr) {
    BackendList list;
    for (int i = 0; i < endpoints; ++i) {
      // Uneven weights so weighted balancers do real work; a few calls in flight and a
      // latency sample so the feedback balancers compare real costs.
      BackendPtr b =
          MakeBackend(Endpoint{"10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250),
                               9000,
                               static_cast<uint32_t>(1 + i % 7),
                               "",
                               {}});
      for (int k = 0; k < i % 3; ++k) b->stats->OnStart();
      b->stats->OnStart();
      b->stats->OnFinish(Clock::Real().Now(), std::chrono::microseconds(100 + i % 50), true);
      list.push_back(std::move(b));
    }
    static std::vector<BackendList>* keep = new std::vector<BackendList>();
    keep->push_back(list);
    picker = CreateBalancer(name).value()->Update(list);
  }
  return picker;
}

void BM_Pick(benchmark::State& state, const std::string& name) {
  std::shared_ptr<const Picker> picker = SharedPicker(name, static_cast<int>(state.range(0)));
  PickArgs args;
  args.has_hash = name == "consistent_hash";
  uint64_t key = static_cast<uint64_t>(state.thread_index()) << 32;
  for (auto _ : state) {
    args.hash = Mix64(++key);
    benchmark::DoNotOptimize(picker->Pick(args).backend);
  }
}

// Snapshot::Read + Pick: the whole per-call balancing cost in the channel.
void BM_ReadAndPick(benchmark::State& state) {
  static Snapshot<Picker>* snapshot =
      new Snapshot<Picker>(SharedPicker("p2c_least_loaded", static_cast<int>(state.range(0))));
  for (auto _ : state) {
    std::shared_ptr<const Picker> picker = snapshot->Read();
    benchmark::DoNotOptimize(picker->Pick(PickArgs{}).backend);
  }
}

// Update cost: building a picker from a list of `endpoints` (the control plane, not per call).
void BM_Update(benchmark::State& state, const std::string& name) {
  BackendList list;
  for (int i = 0; i < state.range(0); ++i) {
    list.push_back(MakeBackend(
        Endpoint{"10.2.0." + std::to_string(i), 9000, static_cast<uint32_t>(1 + i % 7), "", {}}));
  }
  auto balancer = CreateBalancer(name).value();
  for (auto _ : state) benchmark::DoNotOptimize(balancer->Update(list));
}

// The alternative to Snapshot, to compare with it: std::atomic<std::shared_ptr> (a spin lock
// in libstdc++ 12; snapshot.h says why Snapshot does not use it).
void BM_AtomicReadAndPick(benchmark::State& state) {
  static auto* snapshot = new std::atomic<std::shared_ptr<const Picker>>(
      SharedPicker("p2c_least_loaded", static_cast<int>(state.range(0))));
  for (auto _ : state) {
    std::shared_ptr<const Picker> picker = snapshot->load(std::memory_order_acquire);
    benchmark::DoNotOptimize(picker->Pick(PickArgs{}).backend);
  }
}

// N snapshots (the pickers of N channels in one process) read in turn: the read path should
// cost the same whatever N is.
void BM_SnapshotReadMany(benchmark::State& state) {
  static auto* snapshots = [] {
    auto* v = new std::vector<std::unique_ptr<Snapshot<Picker>>>;
    for (int i = 0; i < 64; ++i) {
      v->push_back(std::make_unique<Snapshot<Picker>>(SharedPicker("round_robin", 3)));
    }
    return v;
  }();
  const auto n = static_cast<size_t>(state.range(0));
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize((*snapshots)[i++ % n]->Read());
}

void RegisterAll() {
  benchmark::RegisterBenchmark("BM_SnapshotReadMany", BM_SnapshotReadMany)
      ->Arg(1)
      ->Arg(4)
      ->Arg(16)
      ->Arg(64)
      ->Threads(1)
      ->Threads(2)
      ->UseRealTime();
  for (const char* name : kBalancers) {
    benchmark::RegisterBenchmark((std::string("BM_Pick/") + name).c_str(), BM_Pick,
                                 std::string(name))
        ->Arg(3)
        ->Arg(100)
        ->Arg(1000)
        ->Threads(1)
        ->Threads(2)
        ->UseRealTime();
  }
  for (const char* name : kBalancers) {
    benchmark::RegisterBenchmark((std::string("BM_Update/") + name).c_str(), BM_Update,
                                 std::string(name))
        ->Arg(100)
        ->Arg(1000)
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::RegisterBenchmark("BM_ReadAndPick/p2c_least_loaded", BM_ReadAndPick)
      ->Arg(1000)
      ->Threads(1)
      ->Threads(2)
      ->Threads(4)
      ->UseRealTime();
  benchmark::RegisterBenchmark("BM_AtomicReadAndPick/p2c_least_loaded", BM_AtomicReadAndPick)
      ->Arg(1000)
      ->Threads(1)
      ->Threads(2)
      ->Threads(4)
      ->UseRealTime();
}

}  // namespace
}  // namespace fulcrum

int main(int argc, char** argv) {
  fulcrum::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
