// End-to-end load generator: the Fulcrum channel against a raw Thrift client on the same echo
// servers, same threads, in the same run, alternating rounds so both see the same machine.
//
//   fulcrum_load --servers=1,3 --threads=8 --seconds=5 --rounds=3
//   fulcrum_load --memory_endpoints=1000     # client memory with a 1000-endpoint channel
//
// Raw Thrift: each thread owns one connection (TSocket + TFramedTransport + TBinaryProtocol)
// to server (thread % n), no balancing. Fulcrum: one shared Channel, every call picked by the
// balancer and run on a pooled connection. Prints calls/s, p50/p99 latency, client CPU per call,
// and the Fulcrum/raw throughput ratio (median over rounds).
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/server.h"
#include "support/echo_calls.h"
#include "support/echo_handler.h"
#include "support/subprocess.h"

DEFINE_string(servers, "1,3", "comma-separated server counts to measure");
DEFINE_int32(threads, 8, "client threads");
DEFINE_double(seconds, 4, "length of one measured run");
DEFINE_int32(rounds, 3, "raw/fulcrum pairs per server count (the median is reported)");
DEFINE_int32(payload, 16, "echo payload bytes");
DEFINE_string(balancers, "p2c_least_loaded", "comma-separated balancers for the Fulcrum runs");
DEFINE_string(server_type, "threaded", "threaded or nonblocking");
DEFINE_string(server_binary, FULCRUM_ECHO_SERVER, "the echo server to start");
DEFINE_bool(raw_spread, false, "also run raw Thrift spread round-robin over all servers");
DEFINE_bool(raw_timeouts, false,
            "give the raw client 1 s socket send/receive timeouts, as the channel's deadline does");
DEFINE_bool(raw, true,
            "run the raw Thrift baseline (false: only the Fulcrum runs, e.g. to profile them)");
DEFINE_int32(memory_endpoints, 0, "if > 0: measure client memory with this many endpoints");
DEFINE_int32(serve_listeners, 0, "internal: serve echo on this many ports (memory mode)");

namespace {

using fulcrum::test::EchoClient;
using std::chrono::steady_clock;

struct RunResult {
  double calls_per_sec = 0;
  double p50_us = 0;
  double p99_us = 0;
  double cpu_us_per_call = 0;
  int64_t errors = 0;
};

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long RssKib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Runs `threads` threads each calling `call(thread_index)` in a loop for the run length.
template <class Call>
RunResult Drive(int threads, Call&& call) {
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::vector<uint32_t>> lat(threads);  // nanoseconds, capped at 4 s
  std::vector<int64_t> errors(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      lat[t].reserve(1 << 20);
      while (!go.load()) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = steady_clock::now();
        try {
          call(t);
        } catch (const std::exception& e) {
          if (errors[t]++ == 0) LOG(WARNING) << "call failed: " << e.what();
        }
        const auto ns = (steady_clock::now() - t0).count();
        lat[t].push_back(static_cast<uint32_t>(std::min<int64_t>(ns, 4'000'000'000)));
      }
    });
  }
  const double cpu0 = CpuSeconds();
  const auto start = steady_clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double wall = std::chrono::duration<double>(steady_clock::now() - start).count();
  const double cpu = CpuSeconds() - cpu0;

  std::vector<uint32_t> all;
  RunResult r;
  for (int t = 0; t < threads; ++t) {
    all.insert(all.end(), lat[t].begin(), lat[t].end());
    r.errors += errors[t];
  }
  if (all.empty()) return r;
  std::sort(all.begin(), all.end());
  r.calls_per_sec = static_cast<double>(all.size()) / wall;
  r.p50_us = all[all.size() / 2] / 1e3;
  r.p99_us = all[all.size() * 99 / 100] / 1e3;
  r.cpu_us_per_call = cpu * 1e6 / static_cast<double>(all.size());
  return r;
}

RunResult RunRaw(const std::vector<uint16_t>& ports, const std::string& payload) {
  using namespace apache::thrift;
  std::vector<std::unique_ptr<EchoClient>> clients;
  std::vector<std::shared_ptr<transport::TTransport>> transports;
  for (int t = 0; t < FLAGS_threads; ++t) {
    auto socket = std::make_shared<transport::TSocket>("127.0.0.1", ports[t % ports.size()]);
    if (FLAGS_raw_timeouts) {
      socket->setRecvTimeout(1000);
      socket->setSendTimeout(1000);
    }
    auto framed = std::make_shared<transport::TFramedTransport>(socket);
    framed->open();
    transports.push_back(framed);
    clients.push_back(
        std::make_unique<EchoClient>(std::make_shared<protocol::TBinaryProtocol>(framed)));
  }
  RunResult r = Drive(FLAGS_threads, [&](int t) {
    std::string out;
    clients[t]->echo(out, payload);
  });
  for (auto& tr : transports) tr->close();
  return r;
}

// Raw Thrift spread over every server: each thread owns one connection per server and takes
// them in turn. No balancer, no pool: what spreading load costs by itself.
RunResult RunRawSpread(const std::vector<uint16_t>& ports, const std::string& payload) {
  using namespace apache::thrift;
  std::vector<std::vector<std::unique_ptr<EchoClient>>> clients(FLAGS_threads);
  std::vector<std::shared_ptr<transport::TTransport>> transports;
  for (int t = 0; t < FLAGS_threads; ++t) {
    for (uint16_t port : ports) {
      auto socket = std::make_shared<transport::TSocket>("127.0.0.1", port);
      auto framed = std::make_shared<transport::TFramedTransport>(socket);
      framed->open();
      transports.push_back(framed);
      clients[t].push_back(
          std::make_unique<EchoClient>(std::make_shared<protocol::TBinaryProtocol>(framed)));
    }
  }
  std::vector<size_t> next(FLAGS_threads, static_cast<size_t>(0));
  RunResult r = Drive(FLAGS_threads, [&](int t) {
    std::string out;
    clients[t][next[t]++ % clients[t].size()]->echo(out, payload);
  });
  for (auto& tr : transports) tr->close();
  return r;
}

RunResult RunFulcrum(const std::vector<uint16_t>& ports, const std::string& balancer,
                     const std::string& payload) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  fulcrum::ChannelOptions opts;
  opts.service_name = "echo";
  opts.balancer = balancer;
  auto channel = fulcrum::Channel::Create(target, opts);
  CHECK(channel.ok()) << channel.status();
  auto& ch = **channel;
  for (int i = 0; i < FLAGS_threads; ++i) fulcrum::testing::Echo(ch, payload);  // warm pools
  return Drive(FLAGS_threads, [&](int) { fulcrum::testing::Echo(ch, payload); });
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void PrintRow(const std::string& client, int servers, const RunResult& r) {
  std::printf("| %-30s | %7d | %7d | %10.0f | %8.1f | %8.1f | %8.2f | %6" PRId64 " |\n",
              client.c_str(), servers, FLAGS_threads, r.calls_per_sec, r.p50_us, r.p99_us,
              r.cpu_us_per_call, r.errors);
  std::fflush(stdout);
}

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct Servers {
  std::vector<std::unique_ptr<fulcrum::testing::Subprocess>> processes;
  std::vector<uint16_t> ports;
};

Servers StartServers(int n, const std::vector<std::string>& extra = {}) {
  Servers s;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> argv = {FLAGS_server_binary, "--port=0", "--id=s" + std::to_string(i),
                                     "--server_type=" + FLAGS_server_type};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = fulcrum::testing::Subprocess::Spawn(argv);
    CHECK(p.ok()) << p.status();
    auto line = (*p)->WaitForLine("LISTENING ", std::chrono::seconds(30));
    CHECK(line.ok()) << line.status();
    std::stringstream in(*line);
    int port = 0;
    while (in >> port) s.ports.push_back(static_cast<uint16_t>(port));
    s.processes.push_back(std::move(p).value());
  }
  return s;
}

int Throughput() {
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  std::printf(
      "| client                         | servers | threads |    calls/s |  p50 us  |  p99 us  | "
      "CPU us/call | errors |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> summary;
  for (const std::string& count : Split(FLAGS_servers)) {
    const int n = std::stoi(count);
    Servers servers = StartServers(n);
    std::vector<double> raw;
    std::map<std::string, std::vector<double>> ours;
    for (int round = 0; round < FLAGS_rounds; ++round) {
      if (FLAGS_raw) {
        RunResult r = RunRaw(servers.ports, payload);
        PrintRow("raw thrift (1 conn/thread)", n, r);
        raw.push_back(r.calls_per_sec);
      }
      if (n > 1 && FLAGS_raw_spread) {
        PrintRow("raw thrift, spread over servers", n, RunRawSpread(servers.ports, payload));
      }
      for (const std::string& b : Split(FLAGS_balancers)) {
        RunResult f = RunFulcrum(servers.ports, b, payload);
        PrintRow("fulcrum " + b, n, f);
        ours[b].push_back(f.calls_per_sec);
      }
    }
    for (auto& [b, v] : ours) {
      if (raw.empty()) break;
      char line[200];
      std::snprintf(line, sizeof(line),
                    "%d server(s), %d threads: fulcrum %s / raw thrift = %.3f (median of %d "
                    "rounds: %.0f vs %.0f calls/s)",
                    n, FLAGS_threads, b.c_str(), Median(v) / Median(raw), FLAGS_rounds, Median(v),
                    Median(raw));
      summary.push_back(line);
    }
  }
  std::printf("\n");
  for (const std::string& s : summary) std::printf("%s\n", s.c_str());
  return 0;
}

// Memory mode: one child process serves echo on N ports; the client builds a channel over
// all N, calls each endpoint once (so every pool holds one connection), and reports RSS.
int Memory() {
  const int n = FLAGS_memory_endpoints;
  Servers servers;
  {
    std::vector<std::string> argv = {"/proc/self/exe", "--serve_listeners=" + std::to_string(n)};
    auto p = fulcrum::testing::Subprocess::Spawn(argv);
    CHECK(p.ok()) << p.status();
    auto line = (*p)->WaitForLine("LISTENING ", std::chrono::seconds(120));
    CHECK(line.ok()) << line.status();
    std::stringstream in(*line);
    int port = 0;
    while (in >> port) servers.ports.push_back(static_cast<uint16_t>(port));
    servers.processes.push_back(std::move(p).value());
  }
  CHECK_EQ(static_cast<int>(servers.ports.size()), n);
  const long rss0 = RssKib();
  std::string target = "static://";
  for (int i = 0; i < n; ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(servers.ports[i]);
  }
  fulcrum::ChannelOptions opts;
  opts.balancer = "round_robin";
  auto channel = fulcrum::Channel::Create(target, opts);
  CHECK(channel.ok()) << channel.status();
  const long rss_idle = RssKib();
  for (int i = 0; i < n; ++i) fulcrum::testing::Echo(**channel, "x");
  const long rss_connected = RssKib();
  int open = 0;
  for (const auto& r : (*channel)->Endpoints()) open += r.open_connections;
  std::printf(
      "| endpoints | RSS before | channel, no connections | + one call to each (%d "
      "pooled connections) |\n|---|---|---|---|\n| %d | %ld KiB | +%ld KiB | +%ld KiB "
      "(%.1f KiB per endpoint) |\n",
      open, n, rss0, rss_idle - rss0, rss_connected - rss0,
      static_cast<double>(rss_connected - rss0) / n);
  return 0;
}

int ServeListeners() {
  std::vector<std::unique_ptr<fulcrum::Server>> servers;
  auto handler = std::make_shared<fulcrum::testing::EchoHandler>("mem");
  std::string ports;
  for (int i = 0; i < FLAGS_serve_listeners; ++i) {
    fulcrum::ServerOptions o;
    auto s = std::make_unique<fulcrum::Server>(
        std::make_shared<fulcrum::test::EchoProcessor>(handler), o);
    CHECK(s->Start().ok());
    ports += " " + std::to_string(s->port());
    servers.push_back(std::move(s));
  }
  std::printf("LISTENING%s\n", ports.c_str());
  std::fflush(stdout);
  pause();  // until the parent kills this process
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("Fulcrum vs raw Thrift, end to end. See bench/load.cc.");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  std::signal(SIGPIPE, SIG_IGN);
  if (FLAGS_serve_listeners > 0) return ServeListeners();
  if (FLAGS_memory_endpoints > 0) return Memory();
  return Throughput();
}
