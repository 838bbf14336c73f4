// What a kvstore resync from a full snapshot costs, step by step, for N keys: the master
// taking the snapshot (under the replica's lock, so writes wait that long), converting it to
// kvstore.thrift's FetchResult, serializing it as the fetch reply, the slave deserializing it
// and converting it back, and the slave loading it. A restarted replica is empty and must go
// through all of it before it is in sync again; docs/benchmarks.md (repeated failovers) says
// why that time matters.
//
//   build/bench/fulcrum_kvstore_snapshot_bench --benchmark_repetitions=3
#include <benchmark/benchmark.h>
#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "kvstore_handler.h"
#include "replica.h"

namespace kvstore {
namespace {

using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TMemoryBuffer;

constexpr char kMaster[] = "127.0.0.1:1";

fulcrum::RegistrarDirectives Role(fulcrum::InstanceRole role) {
  fulcrum::RegistrarDirectives d;
  d.role = role;
  d.epoch = 1;
  d.master_address = kMaster;
  d.master_lease = std::chrono::hours(1);
  d.sent_at = fulcrum::Clock::Real().Now();
  return d;
}

// A master holding `keys` keys (24-byte keys, 100-byte values, as kvstore_load writes), with
// a short log: an empty slave is past it, so it is sent a snapshot.
struct Master {
  explicit Master(int keys)
      : replica(role, {.self = kMaster, .min_insync_replicas = 0, .log_retention = 1000}) {
    role.Apply(Role(fulcrum::InstanceRole::kMaster));
    const std::string value(100, 'v');
    for (int i = 0; i < keys; ++i) {
      char key[32];
      std::snprintf(key, sizeof(key), "writer-%02d-key-%010d", i % 4, i);
      CHECK(replica.Put(key, value).ok());
    }
  }
  fulcrum::RoleState role;
  Replica replica;
};

Master& Shared(int keys) {
  static std::map<int, std::unique_ptr<Master>> masters;
  auto& m = masters[keys];
  if (!m) m = std::make_unique<Master>(keys);
  return *m;
}

// An empty replica's first fetch: answered with the whole state.
FetchRequest EmptySlaveFetch() { return FetchRequest{"127.0.0.1:2", 1, 1, 0, {}}; }

std::string Serialize(const rpc::FetchResult& result) {
  auto buffer = std::make_shared<TMemoryBuffer>();
  TBinaryProtocol protocol(buffer);
  result.write(&protocol);
  return buffer->getBufferAsString();
}

void BM_MasterTakesSnapshot(benchmark::State& state) {
  Master& m = Shared(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    KvResult<FetchResponse> r = m.replica.Fetch(EmptySlaveFetch());
    CHECK(r.ok() && r.value.snapshot);
    benchmark::DoNotOptimize(r);
  }
}

void BM_MasterConvertsAndSerializes(benchmark::State& state) {
  Master& m = Shared(static_cast<int>(state.range(0)));
  KvResult<FetchResponse> r = m.replica.Fetch(EmptySlaveFetch());
  size_t bytes = 0;
  for (auto _ : state) {
    state.PauseTiming();
    FetchResponse copy = r.value;  // the handler gets it by value from Fetch
    state.ResumeTiming();
    std::string wire = Serialize(ToThrift(std::move(copy)));
    bytes = wire.size();
    benchmark::DoNotOptimize(wire);
  }
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
}

void BM_SlaveDeserializesAndLoads(benchmark::State& state) {
  Master& m = Shared(static_cast<int>(state.range(0)));
  KvResult<FetchResponse> r = m.replica.Fetch(EmptySlaveFetch());
  const std::string wire = Serialize(ToThrift(FetchResponse(r.value)));
  for (auto _ : state) {
    state.PauseTiming();
    fulcrum::RoleState role;
    role.Apply(Role(fulcrum::InstanceRole::kSlave));
    auto slave = std::make_unique<Replica>(role, ReplicaOptions{.self = "127.0.0.1:2"});
    auto buffer =
        std::make_shared<TMemoryBuffer>(reinterpret_cast<uint8_t*>(const_cast<char*>(wire.data())),
                                        static_cast<uint32_t>(wire.size()), TMemoryBuffer::OBSERVE);
    state.ResumeTiming();
    TBinaryProtocol protocol(buffer);
    rpc::FetchResult result;
    result.read(&protocol);
    KvStatus s = slave->ApplyFetch(EmptySlaveFetch(), FromThrift(std::move(result)));
    CHECK(s.ok()) << s.message;
    state.PauseTiming();
    slave.reset();  // freeing the state is not part of the resync
    state.ResumeTiming();
  }
}

BENCHMARK(BM_MasterTakesSnapshot)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MasterConvertsAndSerializes)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SlaveDeserializesAndLoads)->Arg(10'000)->Arg(100'000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace kvstore

BENCHMARK_MAIN();
