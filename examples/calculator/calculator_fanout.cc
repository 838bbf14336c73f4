// calculator_fanout: one request fanned out to every shard at once, answered when all have.
//
//   calculator_fanout --shards='static://127.0.0.1:9001;static://127.0.0.1:9002' --values=1000
//
// Each shard is its own set of replicas (its own target URI). The values 1..N are split between
// the shards; each shard sums its part through the generated asynchronous client
// (client.async().sum(...) returns a fulcrum::Future at once), every shard in flight at the same
// time on one thread, and fulcrum::WhenAll joins the answers. A shard that fails fails the
// whole request, naming the shard.
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "calculator_fulcrum.h"
#include "fulcrum/command_line.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"

DEFINE_string(shards, "static://127.0.0.1:9090",
              "The shards' targets, separated by ';' (each static://h:p,h:p, "
              "fulcrum://registry:port/Service or etcd://h:p/Service)");
DEFINE_int32(values, 1000, "Sum the values 1..N across the shards");
DEFINE_int32(timeout_ms, 2000, "Deadline of the whole fan-out");

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: calculator_fanout --shards='URI;URI;...' [--values=N]\n  Sums "
                            "1..N across the shards, every shard at once (asynchronous calls).");
  google::InitGoogleLogging(argv[0]);
  for (const fulcrum::Status& s :
       {fulcrum::RegisterFulcrumDiscovery(), fulcrum::RegisterEtcdDiscovery()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "calculator_fanout: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::vector<std::string> targets;
  std::stringstream in(FLAGS_shards);
  for (std::string t; std::getline(in, t, ';');) {
    if (!t.empty()) targets.push_back(t);
  }
  if (targets.empty() || FLAGS_values < 1) {
    std::fprintf(stderr, "calculator_fanout: need at least one shard and --values >= 1\n");
    return 2;
  }
  try {
    // One client per shard, kept for the program's life (a service would keep them too).
    std::vector<calc::fulcrum_gen::CalculatorAsyncClient> shards;
    for (const std::string& target : targets) {
      shards.push_back(calc::fulcrum_gen::CalculatorBalancedClient(target).async());
    }
    // Shard i gets the values v with v % shards == i.
    std::vector<std::vector<int64_t>> parts(shards.size());
    for (int64_t v = 1; v <= FLAGS_values; ++v) parts[v % shards.size()].push_back(v);

    const auto start = std::chrono::steady_clock::now();
    fulcrum::CallOptions options;
    options.deadline = start + std::chrono::milliseconds(FLAGS_timeout_ms);
    std::vector<fulcrum::Future<int64_t>> sums;
    // A failed shard's CallError names the endpoints it tried.
    for (size_t i = 0; i < shards.size(); ++i) {
      sums.push_back(shards[i].sum("fanout", parts[i], options));
    }
    const std::vector<int64_t> answers = fulcrum::WhenAll(std::move(sums)).get();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    int64_t total = 0;
    for (size_t i = 0; i < answers.size(); ++i) {
      std::printf("shard %zu (%s): %zu values, sum %lld\n", i, targets[i].c_str(), parts[i].size(),
                  static_cast<long long>(answers[i]));
      total += answers[i];
    }
    const int64_t expected = int64_t{FLAGS_values} * (FLAGS_values + 1) / 2;
    std::printf("total = %lld (expected %lld) from %zu shards in %.1f ms\n",
                static_cast<long long>(total), static_cast<long long>(expected), shards.size(), ms);
    return total == expected ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calculator_fanout: %s\n", e.what());
    return 1;
  }
}
