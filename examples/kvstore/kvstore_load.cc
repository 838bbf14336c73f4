// kvstore_load: write load on the kvstore master through the registry: --threads callers each
// issuing put(unique key, value) back to back for --seconds; prints throughput and latency.
//
//   kvstore_load --registry=127.0.0.1:7000 --threads=8 --seconds=10
//   puts=81234 errors=0 calls/s=8123 p50_ms=0.91 p99_ms=2.10 max_ms=9.8
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "control_plane.h"
#include "fulcrum/command_line.h"
#include "kvstore_fulcrum.h"

DEFINE_string(registry, "",
              "control plane: fulcrum-registry (host:port) or etcd (etcd://h1:p1,h2:p2)");
DEFINE_string(service, "KvStore", "service name");
DEFINE_int32(threads, 8, "concurrent callers");
DEFINE_int32(seconds, 10, "duration");
DEFINE_int32(value_size, 100, "bytes per value");
DEFINE_int32(warmup_ms, 500, "calls in the first milliseconds are not measured");

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(
      &argc, &argv,
      "usage: kvstore_load --registry=HOST:PORT [--threads=N] [--seconds=N] [flags]\n  Write load "
      "on the kvstore example through a balanced master-slave client.");
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_registry.empty() || FLAGS_threads <= 0 || FLAGS_seconds <= 0 || FLAGS_value_size < 0) {
    std::fprintf(stderr, "usage: kvstore_load --registry=H:P [--threads=N --seconds=S]\n");
    return 2;
  }
  CHECK(kvstore::RegisterDiscovery().ok());
  kvstore::rpc::fulcrum_gen::KvStoreBalancedClient client(
      kvstore::ServiceUri(FLAGS_registry, FLAGS_service),
      kvstore::rpc::fulcrum_gen::KvStoreChannelOptions());
  const std::string value(static_cast<size_t>(FLAGS_value_size), 'v');
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::milliseconds(FLAGS_warmup_ms);
  const auto end = measure_from + std::chrono::seconds(FLAGS_seconds);
  std::atomic<uint64_t> errors{0};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(FLAGS_threads));
  std::vector<std::thread> threads;
  for (int t = 0; t < FLAGS_threads; ++t) {
    threads.emplace_back([&, t] {
      uint64_t i = 0;
      while (true) {
        const auto before = Clock::now();
        if (before >= end) break;
        try {
          client.put("load-" + std::to_string(t) + "-" + std::to_string(i++), value);
          const auto after = Clock::now();
          if (before >= measure_from) {
            latencies[static_cast<size_t>(t)].push_back(
                std::chrono::duration<double, std::milli>(after - before).count());
          }
        } catch (const std::exception& e) {
          if (errors.fetch_add(1) < 5) LOG(WARNING) << "put failed: " << e.what();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf("puts=%zu errors=%llu calls/s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", all.size(),
              static_cast<unsigned long long>(errors.load()),
              static_cast<double>(all.size()) / FLAGS_seconds, pct(0.5), pct(0.99),
              all.empty() ? 0.0 : all.back());
  return errors.load() == 0 ? 0 : 1;
}
