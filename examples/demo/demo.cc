// The demo: starts echo servers on 127.0.0.1 (ports picked by the OS), drives a balanced client
// with several threads, SIGKILLs one server part-way, and prints what happened: calls per
// second, per-endpoint call counts and latency percentiles, ejections and the error count.
//
//   fulcrum_demo --servers=3 --threads=4 --seconds=6 --balancer=p2c_least_loaded
#include <csignal>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "support/echo_calls.h"
#include "support/subprocess.h"

DEFINE_int32(servers, 3, "echo servers to start");
DEFINE_int32(threads, 4, "client threads");
DEFINE_double(seconds, 6, "how long to drive load");
DEFINE_double(kill_at, 0.4, "when to SIGKILL a server, as a share of --seconds (<0: never)");
DEFINE_string(balancer, "p2c_least_loaded", "the balancer to use");
DEFINE_string(server_binary, FULCRUM_ECHO_SERVER, "the server to start");

namespace {

using std::chrono::steady_clock;

struct PerServer {
  std::vector<uint32_t> latency_ns;
};

double Percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k] / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Fulcrum demo: balancing and failover on loopback.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // interleave with log lines in order
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;  // warnings and up: ejections show, routine info does not
  google::InitGoogleLogging(argv[0]);
  std::signal(SIGPIPE, SIG_IGN);
  if (FLAGS_servers < 2 || FLAGS_threads < 1 || FLAGS_seconds <= 0) {
    std::fprintf(stderr, "need --servers >= 2, --threads >= 1, --seconds > 0\n");
    return 2;
  }

  std::printf("== starting %d echo servers on 127.0.0.1\n", FLAGS_servers);
  std::vector<std::unique_ptr<fulcrum::testing::Subprocess>> servers;
  std::map<std::string, std::string> address_of;  // server id -> host:port
  std::string target = "static://";
  for (int i = 0; i < FLAGS_servers; ++i) {
    const std::string id = "server-" + std::to_string(i + 1);
    auto p = fulcrum::testing::Subprocess::Spawn(
        {FLAGS_server_binary, "--id=" + id, "--port=0", "--minloglevel=1"});
    if (!p.ok()) {
      std::fprintf(stderr, "cannot start %s: %s\n", id.c_str(), p.status().ToString().c_str());
      return 1;
    }
    auto port = (*p)->WaitForLine("LISTENING ", std::chrono::seconds(20));
    if (!port.ok()) {
      std::fprintf(stderr, "%s did not start: %s\n", id.c_str(), port.status().ToString().c_str());
      return 1;
    }
    address_of[id] = "127.0.0.1:" + *port;
    target += (i ? "," : "") + address_of[id];
    std::printf("   %s  pid %d  listening on %s\n", id.c_str(), (*p)->pid(),
                address_of[id].c_str());
    servers.push_back(std::move(p).value());
  }

  fulcrum::ChannelOptions opts;
  opts.service_name = "echo";
  opts.balancer = FLAGS_balancer;
  auto channel = fulcrum::Channel::Create(target, opts);
  if (!channel.ok()) {
    std::fprintf(stderr, "cannot create the channel: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  fulcrum::Channel& ch = **channel;
  std::printf("== %d client threads, balancer %s, %.1f s; whoami() is idempotent\n", FLAGS_threads,
              FLAGS_balancer.c_str(), FLAGS_seconds);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> calls{0}, errors{0};
  std::mutex mu;
  std::map<std::string, PerServer> per_server;
  std::vector<std::string> error_samples;
  std::vector<std::thread> threads;
  for (int t = 0; t < FLAGS_threads; ++t) {
    threads.emplace_back([&] {
      std::map<std::string, PerServer> mine;
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = steady_clock::now();
        try {
          const std::string who = fulcrum::testing::Whoami(ch);
          mine[who].latency_ns.push_back(static_cast<uint32_t>((steady_clock::now() - t0).count()));
          calls.fetch_add(1, std::memory_order_relaxed);
        } catch (const std::exception& e) {
          errors.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (error_samples.size() < 3) error_samples.push_back(e.what());
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [id, s] : mine) {
        auto& all = per_server[id].latency_ns;
        all.insert(all.end(), s.latency_ns.begin(), s.latency_ns.end());
      }
    });
  }

  const auto start = steady_clock::now();
  const double kill_at = FLAGS_kill_at < 0 ? 1e9 : FLAGS_kill_at * FLAGS_seconds;
  bool killed = false;
  int64_t last_calls = 0;
  for (int tick = 1; tick <= static_cast<int>(FLAGS_seconds * 2); ++tick) {
    std::this_thread::sleep_until(start + std::chrono::milliseconds(500 * tick));
    const double now = std::chrono::duration<double>(steady_clock::now() - start).count();
    const int64_t c = calls.load();
    std::printf("   t=%4.1fs  %7.0f calls/s  errors so far: %lld\n", now, (c - last_calls) * 2.0,
                static_cast<long long>(errors.load()));
    last_calls = c;
    if (!killed && now >= kill_at) {
      killed = true;
      std::printf("== SIGKILL server-2 (pid %d) under load\n", servers[1]->pid());
      servers[1]->Signal(SIGKILL);
      servers[1]->Wait(std::chrono::seconds(5));
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(steady_clock::now() - start).count();

  std::printf("\n== per endpoint (as the balanced client saw them)\n");
  std::printf("   %-9s %-16s %9s %7s %9s %9s %9s %8s\n", "server", "address", "calls", "share",
              "p50 us", "p99 us", "failures", "ejected");
  std::map<std::string, fulcrum::EndpointReport> reports;
  for (const auto& r : ch.Endpoints()) reports[r.address] = r;
  for (auto& [id, address] : address_of) {
    auto& lat = per_server[id].latency_ns;
    const auto& r = reports[address];
    std::printf("   %-9s %-16s %9zu %6.1f%% %9.0f %9.0f %9llu %8s\n", id.c_str(), address.c_str(),
                lat.size(), 100.0 * lat.size() / std::max<int64_t>(1, calls.load()),
                Percentile(lat, 0.5), Percentile(lat, 0.99),
                static_cast<unsigned long long>(r.failures), r.ejected ? "yes" : "no");
  }
  std::printf("\n== %lld calls in %.1f s (%.0f/s), %lld errors seen by the application\n",
              static_cast<long long>(calls.load()), elapsed, calls.load() / elapsed,
              static_cast<long long>(errors.load()));
  std::printf(
      "   Attempts that failed on the killed server were retried on the others (whoami\n"
      "   is idempotent), and after %u consecutive failures it was ejected.\n",
      opts.outlier.consecutive_failures);
  for (const std::string& e : error_samples) std::printf("   error: %s\n", e.c_str());

  for (auto& s : servers) {
    if (!s->reaped()) {
      s->Signal(SIGTERM);
      s->Wait(std::chrono::seconds(10));
    }
  }
  return errors.load() == 0 ? 0 : 1;
}
