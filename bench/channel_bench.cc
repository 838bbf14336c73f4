// The channel's own cost per call, without the network: Channel::Call on a pooled connection to
// an in-process echo server, with an attempt that sends nothing. What is left is what every
// call pays on top of Thrift: deadline, snapshot read, pick, pool borrow and return, stats,
// tracker, metrics. Stateless and master-slave (writes to the master; reads from slaves);
// stateless with ChannelOptions::metrics off too (what recording metrics costs per call).
//
//   build/bench/fulcrum_channel_bench --benchmark_repetitions=5
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <glog/logging.h>

#include "support/echo_calls.h"
#include "support/test_server.h"

namespace fulcrum {
namespace {

constexpr MethodTraits kWrite{.name = "increment"};
constexpr MethodTraits kRead{.name = "whoami", .idempotent = true, .read = true};

struct Fixture {
  std::vector<std::unique_ptr<testing::TestServer>> servers;
  std::shared_ptr<Channel> channel;
};

// Three servers; in master-slave mode the first is the master of epoch 1.
Fixture& Shared(bool master_slave, bool metrics = true) {
  static Fixture* fixtures[4] = {nullptr, nullptr, nullptr, nullptr};
  Fixture*& f = fixtures[(master_slave ? 1 : 0) + (metrics ? 0 : 2)];
  if (f != nullptr) return *f;
  f = new Fixture;
  EndpointSet set;
  for (int i = 0; i < 3; ++i) {
    f->servers.push_back(testing::TestServer::Start({.id = std::to_string(i)}).value());
    Endpoint e = f->servers.back()->endpoint();
    if (master_slave) {
      e.group = "g";
      e.role = i == 0 ? InstanceRole::kMaster : InstanceRole::kSlave;
      e.epoch = 1;
    }
    set.endpoints.push_back(e);
  }
  ChannelOptions options;
  options.service_name = "echo";
  options.balancer = "p2c_least_loaded";
  options.master_slave = master_slave;
  options.read_from_slaves = master_slave;
  options.metrics = metrics;
  // The endpoints join after the channel is created: slow start would ramp two of the three
  // for the whole run (sending most calls to the third) and measure the ramp, not the call.
  options.slow_start.window = Duration::zero();
  f->channel = Channel::Create("static://" + set.endpoints[0].Address(), options).value();
  f->channel->UpdateEndpoints(set);
  return *f;
}

void Run(benchmark::State& state, bool master_slave, const MethodTraits& method,
         bool metrics = true) {
  Channel& channel = *Shared(master_slave, metrics).channel;
  for (auto _ : state) {
    channel.Call<testing::EchoClient>(method, {}, [](testing::EchoClient&, CallPhase& phase) {
      phase.MarkSent();
      return 0;
    });
  }
}

void BM_CallNoIo_Stateless(benchmark::State& state) { Run(state, false, kWrite); }
void BM_CallNoIo_StatelessMetricsOff(benchmark::State& state) {
  Run(state, false, kWrite, /*metrics=*/false);
}
void BM_CallNoIo_MasterSlaveWrite(benchmark::State& state) { Run(state, true, kWrite); }
void BM_CallNoIo_MasterSlaveRead(benchmark::State& state) { Run(state, true, kRead); }

// A process holding N channels (a service calling several downstream services) and calling
// them in turn: each call reads its channel's picker snapshot. The cost should not depend on N.
void BM_CallNoIo_ManyChannels(benchmark::State& state) {
  static std::vector<std::shared_ptr<Channel>>* channels = [] {
    auto* v = new std::vector<std::shared_ptr<Channel>>;
    const std::string target = "static://" + Shared(false).servers[0]->endpoint().Address();
    ChannelOptions options;
    options.service_name = "echo";
    for (int i = 0; i < 64; ++i) v->push_back(Channel::Create(target, options).value());
    return v;
  }();
  const auto n = static_cast<size_t>(state.range(0));
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    (*channels)[i++ % n]->Call<testing::EchoClient>(kWrite, {},
                                                    [](testing::EchoClient&, CallPhase& phase) {
                                                      phase.MarkSent();
                                                      return 0;
                                                    });
  }
}

BENCHMARK(BM_CallNoIo_Stateless)->ThreadRange(1, 2)->UseRealTime();
BENCHMARK(BM_CallNoIo_StatelessMetricsOff)->ThreadRange(1, 2)->UseRealTime();
BENCHMARK(BM_CallNoIo_ManyChannels)
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->ThreadRange(1, 2)
    ->UseRealTime();
BENCHMARK(BM_CallNoIo_MasterSlaveWrite)->ThreadRange(1, 2)->UseRealTime();
BENCHMARK(BM_CallNoIo_MasterSlaveRead)->ThreadRange(1, 2)->UseRealTime();

}  // namespace
}  // namespace fulcrum

int main(int argc, char** argv) {
  google::InitGoogleLogging(argv[0]);
  FLAGS_minloglevel = 2;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
