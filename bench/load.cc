// End-to-end load generator: the Fulcrum channel against a raw Thrift client on the same echo
// servers, same threads, in the same run.
//
//   fulcrum_load --servers=1,3 --threads=8 --seconds=10 --runs=5
//   fulcrum_load --memory_endpoints=1000     # client memory with a 1000-endpoint channel
//
// Raw Thrift: each thread owns one connection (TSocket + TFramedTransport + TBinaryProtocol)
// to server (thread % n), no balancing. Fulcrum: one shared Channel, every call picked by the
// balancer and run on a pooled connection.
//
// The clients take turns in short phases (--phase_ms, 200 ms by default): every thread calls
// through the raw client, then through Fulcrum, then raw again, and so on. On a shared 2-core
// machine the speed drifts by +-25% within seconds (other tenants, the host's scheduler); runs
// of several seconds one after the other measured that drift more than the clients.
// Alternating every 200 ms gives every client the same machine. A run also has its own luck
// (which server threads share a core with which client threads), so the whole thing is
// repeated --runs times with fresh servers and connections, and the ratio reported is the
// median over runs. --raw_twice adds a second raw client: its ratio shows the method's noise.
//
// --slow_servers=K: the slow-node benchmark. For each balancer and run, two sets of
// --servers (the first count) fresh servers: all fast, and the same with K of them sleeping
// --slow_us in every call. One channel per set takes turns in phases as above; printed: p50,
// p99, calls/s, the share of calls the slow servers got, and per balancer the medians of
// p99 slow / p99 fast and calls/s slow / calls/s fast over the runs.
//
//   fulcrum_load --slow_servers=1 --slow_us=1000 --servers=3 --payload=64 --runs=3
//       --balancers=random,round_robin,weighted_round_robin,least_response_time,p2c_least_loaded,peak_ewma
//
// --separate: the method a user switching stacks would use. Each client runs alone,
// against its own fresh servers, for --seconds; raw Thrift and each Fulcrum balancer take turns
// run after run (the order alternating between rounds), --runs rounds; per round the Fulcrum
// run is divided by the raw run next to it, and the median of those ratios is reported, with
// the medians of calls/s, p50, p99 and machine CPU per call. Both methods are worth having:
// phases put both clients on the same servers at the same moment (less noise), separate runs
// give each client servers of its own (what a user sees, server side included).
//
//   fulcrum_load --separate --servers=1,3 --threads=8 --seconds=4 --runs=6
//
// --metrics_off_too adds, for each balancer, the same Fulcrum client with metrics off, against
// a second set of servers started with --metrics=false: the two take turns like the others, so
// "metrics on / metrics off" is the cost of recording metrics on both sides of every call.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/command_line.h"
#include "fulcrum/server.h"
#include "support/echo_calls.h"
#include "support/echo_handler.h"
#include "support/subprocess.h"
#include "transport/connection_pool.h"  // the pool-only client measures the runtime's pool

DEFINE_string(servers, "1,3", "comma-separated server counts to measure");
DEFINE_int32(threads, 8, "client threads");
DEFINE_double(seconds, 10, "measured time per client and run");
DEFINE_int32(phase_ms, 200, "the clients take turns in phases this long");
DEFINE_int32(payload, 16, "echo payload bytes");
DEFINE_string(balancers, "p2c_least_loaded", "comma-separated balancers for the Fulcrum runs");
DEFINE_string(server_type, "threaded", "threaded or nonblocking");
DEFINE_string(server_binary, FULCRUM_ECHO_SERVER, "the echo server to start");
DEFINE_bool(raw_spread, false, "also run raw Thrift spread round-robin over all servers");
DEFINE_bool(raw_timeouts, false,
            "also run raw Thrift with 1 s socket send/receive timeouts (what enforcing a deadline "
            "with socket timeouts costs)");
DEFINE_bool(pool_only, false,
            "also run Fulcrum's pooled connections without the channel (1 server only): what the "
            "pool and connection set-up cost apart from balancing");
DEFINE_bool(raw_twice, false,
            "also run a second, identical raw Thrift client: the ratio shows the method's noise");
DEFINE_int32(runs, 3,
             "independent runs per server count (fresh servers and connections each); the "
             "ratios reported are the medians over runs");
DEFINE_bool(metrics_off_too, false,
            "also run each Fulcrum client with metrics off (ChannelOptions::metrics and the "
            "servers' ServerOptions::metrics false, on a second set of servers) and report "
            "metrics on / metrics off");
DEFINE_bool(raw, true,
            "run the raw Thrift baseline (false: only the Fulcrum runs, e.g. to profile them)");
DEFINE_int32(slow_servers, 0,
             "if > 0: the slow-node benchmark: per balancer, --servers fast servers against the "
             "same number with this many of them slow (see bench/load.cc)");
DEFINE_int32(slow_us, 1000, "slow-node benchmark: the slow servers' delay per call, microseconds");
DEFINE_double(latency_factor, -1,
              "if >= 0: OutlierOptions::latency_factor for the Fulcrum clients (0: latency "
              "ejection off); else the default");
DEFINE_int32(latency_interval_ms, -1,
             "if > 0: OutlierOptions::latency_interval in ms for the Fulcrum clients");
DEFINE_int32(latency_checks, -1, "if > 0: OutlierOptions::latency_checks for the Fulcrum clients");
DEFINE_int32(slow_start_ms, -1,
             "if >= 0: SlowStartOptions::window in ms for the Fulcrum clients (0: off); else the "
             "default");
DEFINE_int32(hedge_us, 0,
             "if > 0: ChannelOptions::hedge_delay for the Fulcrum clients, microseconds (echo is "
             "idempotent: a call unanswered this long is hedged to another server)");
DEFINE_string(async_windows, "",
              "separate runs: also Fulcrum's asynchronous calls, each thread keeping this many "
              "in flight (comma-separated windows; 1 is a synchronous caller over the pipeline)");
DEFINE_bool(stock_raw_servers, true,
            "--separate: raw Thrift's servers are Apache Thrift's own TThreadPoolServer "
            "(fulcrum_test_echo_server --stock_thrift); false: fulcrum::Server with stock reads "
            "(--batch_reads=false), the baseline of the measurements before 2026-12-06");
DEFINE_bool(batch_reads, true,
            "the Fulcrum clients' echo servers read several requests per recv() "
            "(ServerOptions::batch_reads); raw Thrift's servers never do (--separate)");
DEFINE_int32(pipelined_connections, 0,
             "if > 0: PoolOptions::pipelined_connections of the Fulcrum clients (asynchronous "
             "calls)");
DEFINE_int32(in_flight, 0,
             "if > 0: one caller thread keeps this many asynchronous calls in flight to --servers "
             "(the first count) for --seconds; reports calls/s, errors and memory");
DEFINE_int32(rate, 0,
             "if > 0: open loop at this many calls/s in all (--threads senders on a fixed "
             "schedule), raw Thrift and Fulcrum's asynchronous calls alternating; latency from "
             "each call's scheduled time");
DEFINE_bool(separate, false,
            "separate-runs method: each client alone on fresh servers, raw and Fulcrum "
            "alternating, --runs rounds (see bench/load.cc)");
DEFINE_int32(memory_endpoints, 0, "if > 0: measure client memory with this many endpoints");
DEFINE_int32(serve_listeners, 0, "internal: serve echo on this many ports (memory mode)");

namespace {

using fulcrum::test::EchoClient;
using std::chrono::steady_clock;

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

// The machine's CPU time from /proc/stat, in clock ticks: busy (user, nice, system, irq,
// softirq) and stolen by the hypervisor. Client and servers share the cores, so the busy time
// per call is what a call costs the whole machine.
struct MachineTicks {
  int64_t busy = 0;
  int64_t steal = 0;
  int64_t total = 0;
};

MachineTicks ReadMachineTicks() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  int64_t v[8] = {};  // user nice system idle iowait irq softirq steal
  in >> cpu;
  for (int64_t& x : v) in >> x;
  MachineTicks t;
  if (cpu != "cpu") return t;
  t.busy = v[0] + v[1] + v[2] + v[5] + v[6];
  t.steal = v[7];
  for (int64_t x : v) t.total += x;
  return t;
}

// A client under test: `call(thread)` makes one echo call on behalf of client thread `thread`.
struct Client {
  std::string name;
  std::function<void(int)> call;
  std::function<void()> close = [] {};
  std::shared_ptr<fulcrum::Channel> channel;  // Fulcrum clients only
  // Set instead of `call` by clients with several calls in flight per thread: completes one
  // call and returns its latency in nanoseconds (from its start, not from this invocation).
  std::function<int64_t(int)> call_timed;
};

std::shared_ptr<EchoClient> RawConnection(
    uint16_t port, bool timeouts,
    std::vector<std::shared_ptr<apache::thrift::transport::TTransport>>* opened) {
  using namespace apache::thrift;
  auto socket = std::make_shared<transport::TSocket>("127.0.0.1", port);
  if (timeouts) {
    socket->setRecvTimeout(1000);
    socket->setSendTimeout(1000);
  }
  auto framed = std::make_shared<transport::TFramedTransport>(socket);
  framed->open();
  opened->push_back(framed);
  return std::make_shared<EchoClient>(std::make_shared<protocol::TBinaryProtocol>(framed));
}

// Raw Thrift: thread t owns one connection to server t % n.
Client RawClient(const std::vector<uint16_t>& ports, const std::string& payload,
                 bool timeouts = false) {
  auto opened =
      std::make_shared<std::vector<std::shared_ptr<apache::thrift::transport::TTransport>>>();
  std::vector<std::shared_ptr<EchoClient>> clients;
  for (int t = 0; t < FLAGS_threads; ++t) {
    clients.push_back(RawConnection(ports[t % ports.size()], timeouts, opened.get()));
  }
  return {timeouts ? "raw thrift, 1 s socket timeouts" : "raw thrift (1 conn/thread)",
          [clients, payload](int t) {
            std::string out;
            clients[t]->echo(out, payload);
          },
          [opened] {
            for (auto& tr : *opened) tr->close();
          }};
}

// Raw Thrift spread over every server: each thread owns one connection per server and takes
// them in turn. No balancer, no pool: what spreading load costs by itself.
Client RawSpreadClient(const std::vector<uint16_t>& ports, const std::string& payload) {
  auto opened =
      std::make_shared<std::vector<std::shared_ptr<apache::thrift::transport::TTransport>>>();
  auto clients =
      std::make_shared<std::vector<std::vector<std::shared_ptr<EchoClient>>>>(FLAGS_threads);
  for (int t = 0; t < FLAGS_threads; ++t) {
    for (uint16_t port : ports) (*clients)[t].push_back(RawConnection(port, false, opened.get()));
  }
  auto next = std::make_shared<std::vector<size_t>>(FLAGS_threads, 0);
  return {"raw thrift, spread over servers",
          [clients, next, payload](int t) {
            std::string out;
            auto& mine = (*clients)[t];
            mine[(*next)[t]++ % mine.size()]->echo(out, payload);
          },
          [opened] {
            for (auto& tr : *opened) tr->close();
          }};
}

// Fulcrum: one channel shared by every thread, over a static endpoint list.
Client FulcrumClient(const std::vector<uint16_t>& ports, const std::string& balancer,
                     const std::string& payload, bool metrics = true) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  fulcrum::ChannelOptions opts;
  opts.service_name = "echo";
  opts.balancer = balancer;
  opts.metrics = metrics;
  if (FLAGS_latency_factor >= 0) opts.outlier.latency_factor = FLAGS_latency_factor;
  if (FLAGS_latency_interval_ms > 0) {
    opts.outlier.latency_interval = std::chrono::milliseconds(FLAGS_latency_interval_ms);
  }
  if (FLAGS_latency_checks > 0) opts.outlier.latency_checks = FLAGS_latency_checks;
  if (FLAGS_slow_start_ms >= 0)
    opts.slow_start.window = std::chrono::milliseconds(FLAGS_slow_start_ms);
  if (FLAGS_hedge_us > 0) opts.hedge_delay = std::chrono::microseconds(FLAGS_hedge_us);
  if (FLAGS_pipelined_connections > 0)
    opts.pool.pipelined_connections = FLAGS_pipelined_connections;
  auto created = fulcrum::Channel::Create(target, opts);
  CHECK(created.ok()) << created.status();
  std::shared_ptr<fulcrum::Channel> channel = std::move(created).value();
  return {"fulcrum " + balancer + (metrics ? "" : ", metrics off"),
          [channel, payload](int) { fulcrum::testing::Echo(*channel, payload); }, [] {}, channel};
}

// Fulcrum's asynchronous calls: each thread keeps `window` calls in flight on the channel's
// pipelined connections, and each call(t) waits for the oldest.
Client FulcrumAsyncClient(const std::vector<uint16_t>& ports, const std::string& balancer,
                          const std::string& payload, int window) {
  Client c = FulcrumClient(ports, balancer, payload);
  struct InFlight {
    steady_clock::time_point start;
    fulcrum::Future<std::string> reply;
  };
  auto queues = std::make_shared<std::vector<std::deque<InFlight>>>(FLAGS_threads);
  std::shared_ptr<fulcrum::Channel> channel = c.channel;
  c.name = "fulcrum async, " + std::to_string(window) + " in flight/thread";
  c.call = nullptr;
  c.call_timed = [channel, queues, payload, window](int t) -> int64_t {
    std::deque<InFlight>& q = (*queues)[t];
    while (static_cast<int>(q.size()) < window) {
      q.push_back({steady_clock::now(), fulcrum::testing::EchoAsync(*channel, payload)});
    }
    InFlight oldest = std::move(q.front());
    q.pop_front();
    oldest.reply.get();
    return (steady_clock::now() - oldest.start).count();
  };
  c.close = [queues] {
    for (auto& q : *queues) {
      for (InFlight& f : q) f.reply.wait();
      q.clear();
    }
  };
  return c;
}

// Fulcrum's pooled connections to the first server, without the channel: no balancer, stats,
// retries or deadline.
Client PoolOnlyClient(const std::vector<uint16_t>& ports, const std::string& payload) {
  auto pool = std::make_shared<fulcrum::internal::ConnectionPool>(
      fulcrum::Endpoint{.host = "127.0.0.1", .port = ports[0]}, fulcrum::PoolOptions{});
  return {"fulcrum pool, no channel", [pool, payload](int) {
            auto lease = pool->Acquire(fulcrum::Clock::Real().Now() + std::chrono::seconds(1));
            std::string out;
            lease->connection().As<EchoClient>().echo(out, payload);
          }};
}

struct Totals {
  int64_t calls = 0;
  double seconds = 0;
  double client_cpu = 0;
  int64_t busy_ticks = 0;
  int64_t steal_ticks = 0;
  int64_t all_ticks = 0;
  int64_t errors = 0;
  std::vector<uint32_t> latency_ns;  // capped at 4 s

  double Rate() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
  double Percentile(double q) const {
    if (latency_ns.empty()) return 0;
    return latency_ns[static_cast<size_t>(q * static_cast<double>(latency_ns.size() - 1))] / 1e3;
  }
  double ClientCpuPerCall() const { return client_cpu * 1e6 / std::max<double>(1, calls); }
  double MachineCpuPerCall() const {
    return static_cast<double>(busy_ticks) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK)) /
           std::max<double>(1, calls);
  }
  double StealShare() const {
    return all_ticks > 0 ? static_cast<double>(steal_ticks) / static_cast<double>(all_ticks) : 0;
  }
};

// Phase p of cycle c = p / m belongs to client (c + p) % m: the order rotates every cycle so
// that no client always follows the same other one.
int ClientOfPhase(int p, int m) { return (p / m + p) % m; }

// Runs every client for `seconds` in total, taking turns in phases of FLAGS_phase_ms.
std::vector<Totals> Drive(std::vector<Client>& clients, double seconds) {
  const int m = static_cast<int>(clients.size());
  const int cycles = std::max(1, static_cast<int>(std::lround(seconds * 1000 / FLAGS_phase_ms)));
  const int phases = cycles * m;
  const int threads = FLAGS_threads;
  std::atomic<int> phase{-1};  // -1: not started; `phases`: stop
  // Per thread: calls started in each phase, errors, and latencies per client.
  std::vector<std::vector<int64_t>> started(threads, std::vector<int64_t>(phases, 0));
  std::vector<std::vector<int64_t>> errors(threads, std::vector<int64_t>(m, 0));
  std::vector<std::vector<std::vector<uint32_t>>> lat(threads,
                                                      std::vector<std::vector<uint32_t>>(m));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (auto& v : lat[t]) v.reserve(1 << 19);
      int p;
      while ((p = phase.load()) < 0) std::this_thread::yield();
      for (; p < phases; p = phase.load(std::memory_order_relaxed)) {
        const int c = ClientOfPhase(p, m);
        const auto t0 = steady_clock::now();
        int64_t ns = -1;
        try {
          if (clients[c].call_timed) {
            ns = clients[c].call_timed(t);
          } else {
            clients[c].call(t);
          }
        } catch (const std::exception& e) {
          if (errors[t][c]++ == 0) LOG(WARNING) << clients[c].name << ": call failed: " << e.what();
        }
        if (ns < 0) ns = (steady_clock::now() - t0).count();
        lat[t][c].push_back(static_cast<uint32_t>(std::min<int64_t>(ns, 4'000'000'000)));
        ++started[t][p];
      }
    });
  }
  std::vector<Totals> totals(m);
  std::vector<double> phase_seconds(phases);
  const auto phase_length = std::chrono::milliseconds(FLAGS_phase_ms);
  auto begin = steady_clock::now();
  double cpu = CpuSeconds();
  MachineTicks ticks = ReadMachineTicks();
  for (int p = 0; p <= phases; ++p) {
    phase.store(p);
    if (p > 0) {
      const auto now = steady_clock::now();
      const double now_cpu = CpuSeconds();
      const MachineTicks now_ticks = ReadMachineTicks();
      Totals& tot = totals[ClientOfPhase(p - 1, m)];
      phase_seconds[p - 1] = std::chrono::duration<double>(now - begin).count();
      tot.seconds += phase_seconds[p - 1];
      tot.client_cpu += now_cpu - cpu;
      tot.busy_ticks += now_ticks.busy - ticks.busy;
      tot.steal_ticks += now_ticks.steal - ticks.steal;
      tot.all_ticks += now_ticks.total - ticks.total;
      begin = now;
      cpu = now_cpu;
      ticks = now_ticks;
    }
    if (p < phases) std::this_thread::sleep_until(begin + phase_length);
  }
  for (auto& th : pool) th.join();
  for (int p = 0; p < phases; ++p) {
    int64_t calls = 0;
    for (int t = 0; t < threads; ++t) calls += started[t][p];
    totals[ClientOfPhase(p, m)].calls += calls;
  }
  for (int c = 0; c < m; ++c) {
    for (int t = 0; t < threads; ++t) {
      totals[c].errors += errors[t][c];
      totals[c].latency_ns.insert(totals[c].latency_ns.end(), lat[t][c].begin(), lat[t][c].end());
    }
    std::sort(totals[c].latency_ns.begin(), totals[c].latency_ns.end());
  }
  return totals;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
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

// `slow`: the first this many servers sleep --slow_us in every call.
// `batch_reads`: ServerOptions::batch_reads (raw Thrift's servers in --separate runs read as a
// stock Thrift server does).
Servers StartServers(int n, const std::vector<std::string>& extra = {}, int slow = 0,
                     bool batch_reads = FLAGS_batch_reads) {
  Servers s;
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> argv = {
        FLAGS_server_binary, "--port=0", "--id=s" + std::to_string(i),
        "--server_type=" + FLAGS_server_type,
        std::string("--batch_reads=") + (batch_reads ? "true" : "false")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (i < slow) argv.push_back("--delay_us=" + std::to_string(FLAGS_slow_us));
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

// The clients of one run, in the order they are driven; raw Thrift first when it runs.
// `quiet_ports`: servers with metrics off, for --metrics_off_too.
std::vector<Client> MakeClients(const std::vector<uint16_t>& ports,
                                const std::vector<uint16_t>& quiet_ports,
                                const std::string& payload) {
  std::vector<Client> clients;
  if (FLAGS_raw) clients.push_back(RawClient(ports, payload));
  if (FLAGS_raw_twice) {
    clients.push_back(RawClient(ports, payload));
    clients.back().name = "raw thrift again (A/A)";
  }
  if (FLAGS_raw_timeouts) clients.push_back(RawClient(ports, payload, /*timeouts=*/true));
  if (ports.size() > 1 && FLAGS_raw_spread) clients.push_back(RawSpreadClient(ports, payload));
  if (ports.size() == 1 && FLAGS_pool_only) clients.push_back(PoolOnlyClient(ports, payload));
  for (const std::string& b : Split(FLAGS_balancers)) {
    clients.push_back(FulcrumClient(ports, b, payload));
    if (FLAGS_metrics_off_too) {
      clients.push_back(FulcrumClient(quiet_ports, b, payload, /*metrics=*/false));
    }
  }
  return clients;
}

std::string Join(const std::vector<double>& v, const char* format) {
  std::string out;
  char buf[32];
  for (double x : v) {
    std::snprintf(buf, sizeof(buf), format, x);
    out += (out.empty() ? "" : ", ") + std::string(buf);
  }
  return out;
}

int Throughput() {
  CHECK_GT(FLAGS_phase_ms, 0) << "--phase_ms must be positive";
  CHECK_GT(FLAGS_threads, 0) << "--threads must be positive";
  CHECK_GT(FLAGS_runs, 0) << "--runs must be positive";
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  std::printf(
      "| client                          | servers | run |    calls/s |  p50 us  |  p99 us  | "
      "client CPU us/call | machine CPU us/call | steal | errors |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> summary;
  int64_t failed_calls = 0;
  for (const std::string& count : Split(FLAGS_servers)) {
    const int n = std::stoi(count);
    std::vector<std::string> names;
    // Per client after raw: each run's throughput ratio and machine-CPU-per-call ratio to raw.
    std::vector<std::vector<double>> ratio, machine_ratio, rate;
    for (int run = 1; run <= FLAGS_runs; ++run) {
      Servers servers = StartServers(n);
      Servers quiet;
      if (FLAGS_metrics_off_too) quiet = StartServers(n, {"--metrics=false"});
      std::vector<Client> clients = MakeClients(servers.ports, quiet.ports, payload);
      // Warm up: one cycle connects every pool and starts the servers' threads.
      Drive(clients, FLAGS_phase_ms / 1000.0);
      const std::vector<Totals> totals = Drive(clients, FLAGS_seconds);
      for (Client& c : clients) c.close();
      if (names.empty()) {
        for (const Client& c : clients) names.push_back(c.name);
        ratio.resize(clients.size());
        machine_ratio.resize(clients.size());
        rate.resize(clients.size());
      }
      for (size_t c = 0; c < clients.size(); ++c) {
        const Totals& t = totals[c];
        std::printf(
            "| %-31s | %7d | %3d | %10.0f | %8.1f | %8.1f | %8.2f | %8.2f | %5.1f%% | %6" PRId64
            " |\n",
            clients[c].name.c_str(), n, run, t.Rate(), t.Percentile(0.5), t.Percentile(0.99),
            t.ClientCpuPerCall(), t.MachineCpuPerCall(), 100 * t.StealShare(), t.errors);
        rate[c].push_back(t.Rate());
        failed_calls += t.errors;
        if (!FLAGS_raw || c == 0) continue;
        ratio[c].push_back(t.Rate() / totals[0].Rate());
        machine_ratio[c].push_back(t.MachineCpuPerCall() / totals[0].MachineCpuPerCall());
      }
      std::fflush(stdout);
    }
    // Metrics on vs off: each "fulcrum B" client is followed by its "metrics off" twin.
    for (size_t c = 0; FLAGS_metrics_off_too && c + 1 < names.size(); ++c) {
      if (names[c + 1] != names[c] + ", metrics off") continue;
      std::vector<double> on_off;
      for (size_t r = 0; r < rate[c].size(); ++r) on_off.push_back(rate[c][r] / rate[c + 1][r]);
      char line[600];
      std::snprintf(line, sizeof(line),
                    "%d server(s), %d threads: %s metrics on / metrics off = %.3f, median of %d "
                    "runs (%s); %.0f vs %.0f calls/s",
                    n, FLAGS_threads, names[c].c_str(), Median(on_off), FLAGS_runs,
                    Join(on_off, "%.3f").c_str(), Median(rate[c]), Median(rate[c + 1]));
      summary.push_back(line);
    }
    if (!FLAGS_raw) continue;
    for (size_t c = 1; c < names.size(); ++c) {
      char line[600];
      std::snprintf(line, sizeof(line),
                    "%d server(s), %d threads: %s / raw thrift = %.3f, median of %d runs (%s); "
                    "%.0f vs %.0f calls/s; machine CPU per call %.3fx raw's",
                    n, FLAGS_threads, names[c].c_str(), Median(ratio[c]), FLAGS_runs,
                    Join(ratio[c], "%.3f").c_str(), Median(rate[c]), Median(rate[0]),
                    Median(machine_ratio[c]));
      summary.push_back(line);
    }
  }
  std::printf("\n");
  for (const std::string& s : summary) std::printf("%s\n", s.c_str());
  if (failed_calls > 0) {
    std::printf("%" PRId64 " calls failed (the first failure of each client is logged)\n",
                failed_calls);
    return 1;
  }
  return 0;
}

// The separate-runs method: see the top of this file.
int Separate() {
  CHECK_GT(FLAGS_runs, 0) << "--runs must be positive";
  CHECK_GT(FLAGS_threads, 0) << "--threads must be positive";
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  const std::vector<std::string> balancers = Split(FLAGS_balancers);
  const std::vector<std::string> windows = Split(FLAGS_async_windows);
  std::printf(
      "| client | servers | round |    calls/s |  p50 us  |  p99 us  | client CPU us/call | "
      "machine CPU us/call | errors |\n|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> summary;
  int64_t failed_calls = 0;
  for (const std::string& count : Split(FLAGS_servers)) {
    const int n = std::stoi(count);
    // Kind 0 is raw Thrift, kind b + 1 the Fulcrum client with balancer b, then the
    // asynchronous clients (the first balancer) by window.
    const size_t kinds = balancers.size() + 1 + windows.size();
    const auto make = [&](size_t k, const std::vector<uint16_t>& ports) {
      if (k == 0) return RawClient(ports, payload);
      if (k <= balancers.size()) return FulcrumClient(ports, balancers[k - 1], payload);
      return FulcrumAsyncClient(ports, balancers[0], payload,
                                std::stoi(windows[k - 1 - balancers.size()]));
    };
    std::vector<std::string> names(kinds);
    std::vector<std::vector<double>> rate(kinds), p50(kinds), p99(kinds), cpu(kinds);
    std::vector<std::vector<double>> ratio(kinds), cpu_ratio(kinds);
    for (int round = 1; round <= FLAGS_runs; ++round) {
      std::vector<size_t> order(kinds);
      for (size_t k = 0; k < kinds; ++k) order[k] = k;
      if (round % 2 == 0) std::reverse(order.begin(), order.end());
      std::vector<Totals> totals(kinds);
      for (size_t k : order) {
        const bool stock = k == 0 && FLAGS_stock_raw_servers;
        Servers servers = StartServers(
            n, stock ? std::vector<std::string>{"--stock_thrift"} : std::vector<std::string>{}, 0,
            /*batch_reads=*/k != 0 && FLAGS_batch_reads);
        std::vector<Client> one = {make(k, servers.ports)};
        names[k] = one[0].name;
        Drive(one, FLAGS_phase_ms / 1000.0);  // warm up: connections, server threads
        totals[k] = Drive(one, FLAGS_seconds)[0];
        one[0].close();
        const Totals& t = totals[k];
        std::printf("| %-31s | %7d | %5d | %10.0f | %8.1f | %8.1f | %8.2f | %8.2f | %6" PRId64
                    " |\n",
                    one[0].name.c_str(), n, round, t.Rate(), t.Percentile(0.5), t.Percentile(0.99),
                    t.ClientCpuPerCall(), t.MachineCpuPerCall(), t.errors);
        std::fflush(stdout);
        failed_calls += t.errors;
        rate[k].push_back(t.Rate());
        p50[k].push_back(t.Percentile(0.5));
        p99[k].push_back(t.Percentile(0.99));
        cpu[k].push_back(t.MachineCpuPerCall());
      }
      for (size_t k = 1; k < kinds; ++k) {
        ratio[k].push_back(totals[k].Rate() / totals[0].Rate());
        cpu_ratio[k].push_back(totals[k].MachineCpuPerCall() / totals[0].MachineCpuPerCall());
      }
    }
    for (size_t k = 1; k < kinds; ++k) {
      char line[700];
      std::snprintf(line, sizeof(line),
                    "separate runs, %d server(s), %d threads: %s / raw thrift = %.3f, "
                    "median of %d rounds (%s); %.0f vs %.0f calls/s; p50 %.1f vs %.1f us, p99 "
                    "%.1f vs %.1f us; machine CPU per call %.1f vs %.1f us (%.3fx)",
                    n, FLAGS_threads, names[k].c_str(), Median(ratio[k]), FLAGS_runs,
                    Join(ratio[k], "%.3f").c_str(), Median(rate[k]), Median(rate[0]),
                    Median(p50[k]), Median(p50[0]), Median(p99[k]), Median(p99[0]), Median(cpu[k]),
                    Median(cpu[0]), Median(cpu_ratio[k]));
      summary.push_back(line);
    }
  }
  std::printf("\n");
  for (const std::string& s : summary) std::printf("%s\n", s.c_str());
  return failed_calls > 0 ? 1 : 0;
}

// Calls each endpoint of `channel` has finished, by address.
std::map<std::string, uint64_t> CallsByAddress(const fulcrum::Channel& channel) {
  std::map<std::string, uint64_t> out;
  for (const fulcrum::EndpointReport& r : channel.Endpoints()) out[r.address] = r.calls;
  return out;
}

// The slow-node benchmark: see the top of this file.
int SlowNode() {
  CHECK_GT(FLAGS_phase_ms, 0) << "--phase_ms must be positive";
  CHECK_GT(FLAGS_runs, 0) << "--runs must be positive";
  const int n = std::stoi(Split(FLAGS_servers).at(0));
  CHECK_GT(n, FLAGS_slow_servers) << "--servers must exceed --slow_servers";
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  std::printf(
      "| balancer | servers | run |  fast calls/s | fast p50 us | fast p99 us | slow calls/s | "
      "slow p50 us | slow p99 us | slow share | ejections (fast set) | errors |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  std::vector<std::string> summary;
  int64_t failed_calls = 0;
  for (const std::string& balancer : Split(FLAGS_balancers)) {
    std::vector<double> p99_ratio, rate_ratio, share, p99_fast, p99_slow, rate_fast, rate_slow;
    for (int run = 1; run <= FLAGS_runs; ++run) {
      Servers fast = StartServers(n);
      Servers mixed = StartServers(n, {}, FLAGS_slow_servers);
      std::vector<Client> clients = {FulcrumClient(fast.ports, balancer, payload),
                                     FulcrumClient(mixed.ports, balancer, payload)};
      Drive(clients, FLAGS_phase_ms / 1000.0);  // warm up
      const fulcrum::Channel& slow_channel = *clients[1].channel;
      const std::map<std::string, uint64_t> before = CallsByAddress(slow_channel);
      const std::vector<Totals> totals = Drive(clients, FLAGS_seconds);
      const std::map<std::string, uint64_t> after = CallsByAddress(slow_channel);
      uint64_t all = 0;
      uint64_t to_slow = 0;
      for (const auto& [address, calls] : after) {
        const uint64_t d = calls - before.at(address);
        all += d;
        for (int i = 0; i < FLAGS_slow_servers; ++i) {
          if (address == "127.0.0.1:" + std::to_string(mixed.ports[i])) to_slow += d;
        }
      }
      // Ejections on the slow set, and on the fast one (where any is a false alarm).
      uint64_t ejections = 0;
      for (const fulcrum::EndpointReport& r : slow_channel.Endpoints()) ejections += r.ejections;
      uint64_t fast_ejections = 0;
      for (const fulcrum::EndpointReport& r : clients[0].channel->Endpoints()) {
        fast_ejections += r.ejections;
      }
      for (Client& c : clients) c.close();
      const Totals& f = totals[0];
      const Totals& s = totals[1];
      const double slow_share = all > 0 ? static_cast<double>(to_slow) / all : 0;
      std::printf("| %s | %d+%d | %d | %.0f | %.1f | %.1f | %.0f | %.1f | %.1f | %.2f%% | %" PRIu64
                  " (%" PRIu64 ") | %" PRId64 " |\n",
                  balancer.c_str(), n - FLAGS_slow_servers, FLAGS_slow_servers, run, f.Rate(),
                  f.Percentile(0.5), f.Percentile(0.99), s.Rate(), s.Percentile(0.5),
                  s.Percentile(0.99), 100 * slow_share, ejections, fast_ejections,
                  f.errors + s.errors);
      std::fflush(stdout);
      failed_calls += f.errors + s.errors;
      p99_ratio.push_back(s.Percentile(0.99) / f.Percentile(0.99));
      rate_ratio.push_back(s.Rate() / f.Rate());
      share.push_back(slow_share);
      p99_fast.push_back(f.Percentile(0.99));
      p99_slow.push_back(s.Percentile(0.99));
      rate_fast.push_back(f.Rate());
      rate_slow.push_back(s.Rate());
    }
    char line[600];
    std::snprintf(line, sizeof(line),
                  "%s: p99 slow/fast = %.2f (%s), calls/s slow/fast = %.2f (%s), slow share "
                  "%.2f%%; medians of %d runs: p99 %.0f vs %.0f us, %.0f vs %.0f calls/s",
                  balancer.c_str(), Median(p99_ratio), Join(p99_ratio, "%.2f").c_str(),
                  Median(rate_ratio), Join(rate_ratio, "%.2f").c_str(), 100 * Median(share),
                  FLAGS_runs, Median(p99_slow), Median(p99_fast), Median(rate_slow),
                  Median(rate_fast));
    summary.push_back(line);
  }
  std::printf(
      "\n%d fast servers vs %d fast + %d sleeping %d us per call; %d threads, %d-byte "
      "payload\n",
      n, n - FLAGS_slow_servers, FLAGS_slow_servers, FLAGS_slow_us, FLAGS_threads, FLAGS_payload);
  for (const std::string& s : summary) std::printf("%s\n", s.c_str());
  return failed_calls > 0 ? 1 : 0;
}

std::string StaticTarget(const std::vector<uint16_t>& ports) {
  std::string target = "static://";
  for (size_t i = 0; i < ports.size(); ++i) {
    target += (i ? "," : "") + std::string("127.0.0.1:") + std::to_string(ports[i]);
  }
  return target;
}

// One caller thread keeps --in_flight asynchronous calls in flight: each completion (on the
// event thread) frees a slot, and the caller fills the slots again.
int InFlight() {
  const int n = std::stoi(Split(FLAGS_servers).front());
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  Servers servers = StartServers(n);
  fulcrum::ChannelOptions opts;
  opts.service_name = "echo";
  opts.balancer = Split(FLAGS_balancers).front();
  opts.default_timeout = std::chrono::seconds(30);
  if (FLAGS_pipelined_connections > 0)
    opts.pool.pipelined_connections = FLAGS_pipelined_connections;
  auto channel = fulcrum::Channel::Create(StaticTarget(servers.ports), opts).value();
  fulcrum::testing::Echo(*channel, payload);  // connected
  const long rss0 = RssKib();
  std::mutex mu;
  std::condition_variable cv;
  int in_flight = 0;
  int peak = 0;
  std::atomic<int64_t> done{0}, errors{0};
  long rss_peak = rss0;
  const auto start = steady_clock::now();
  const auto end = start + std::chrono::duration<double>(FLAGS_seconds);
  const double cpu0 = CpuSeconds();
  auto next_rss = start;
  while (steady_clock::now() < end) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return in_flight < FLAGS_in_flight; });
    }
    int room;
    {
      std::lock_guard<std::mutex> lock(mu);
      room = FLAGS_in_flight - in_flight;
      in_flight += room;
      peak = std::max(peak, in_flight);
    }
    for (int i = 0; i < room; ++i) {
      fulcrum::testing::EchoAsync(*channel, payload)
          .OnReady([&, payload](fulcrum::Future<std::string> f) {
            try {
              if (f.get() != payload) errors.fetch_add(1);
            } catch (const std::exception& e) {
              if (errors.fetch_add(1) == 0) LOG(WARNING) << "call failed: " << e.what();
            }
            done.fetch_add(1, std::memory_order_relaxed);
            std::lock_guard<std::mutex> lock(mu);
            --in_flight;
            cv.notify_one();
          });
    }
    if (steady_clock::now() >= next_rss) {
      rss_peak = std::max(rss_peak, RssKib());
      next_rss += std::chrono::milliseconds(100);
    }
  }
  const double seconds = std::chrono::duration<double>(steady_clock::now() - start).count();
  const int64_t calls = done.load();
  const double cpu = CpuSeconds() - cpu0;
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return in_flight == 0; });
  }
  std::printf(
      "one caller thread, %d calls in flight (peak %d) to %d server(s), %d-byte echo, %.1f s: "
      "%.0f calls/s, %" PRId64
      " errors; client CPU %.1f us/call; RSS %ld KiB before, %ld KiB at "
      "peak (+%.2f KiB per call in flight)\n",
      FLAGS_in_flight, peak, n, FLAGS_payload, seconds, static_cast<double>(calls) / seconds,
      errors.load(), cpu * 1e6 / std::max<double>(1, static_cast<double>(calls)), rss0, rss_peak,
      static_cast<double>(rss_peak - rss0) / FLAGS_in_flight);
  return errors.load() > 0 ? 1 : 0;
}

// Open loop at --rate calls/s: --threads senders, each on a fixed schedule. Raw Thrift's
// senders wait for each reply (a late reply delays the next send, whose latency counts from its
// scheduled time); Fulcrum's send asynchronously and never wait.
struct OpenLoopResult {
  std::vector<uint32_t> latency_ns;
  int64_t errors = 0;
  double client_cpu_per_call = 0;
};

OpenLoopResult OpenLoop(bool fulcrum, const std::vector<uint16_t>& ports,
                        const std::string& payload) {
  const int threads = FLAGS_threads;
  const auto period = std::chrono::duration_cast<steady_clock::duration>(
      std::chrono::duration<double>(static_cast<double>(threads) / FLAGS_rate));
  const int64_t per_thread = static_cast<int64_t>(FLAGS_seconds * FLAGS_rate / threads);
  std::vector<std::vector<uint32_t>> lat(threads);
  std::atomic<int64_t> errors{0};
  std::mutex mu;
  Client raw;
  std::shared_ptr<fulcrum::Channel> channel;
  if (fulcrum) {
    fulcrum::ChannelOptions opts;
    opts.service_name = "echo";
    opts.balancer = Split(FLAGS_balancers).front();
    if (FLAGS_pipelined_connections > 0) {
      opts.pool.pipelined_connections = FLAGS_pipelined_connections;
    }
    channel = fulcrum::Channel::Create(StaticTarget(ports), opts).value();
    fulcrum::testing::Echo(*channel, payload);
  } else {
    raw = RawClient(ports, payload);
  }
  std::atomic<int64_t> pending{0};
  const double cpu0 = CpuSeconds();
  const auto start = steady_clock::now() + std::chrono::milliseconds(50);
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t) {
    senders.emplace_back([&, t] {
      lat[t].reserve(static_cast<size_t>(per_thread));
      // The threads' schedules interleave: thread t starts t/threads of a period late.
      const auto first = start + period * t / threads;
      for (int64_t k = 0; k < per_thread; ++k) {
        const auto at = first + period * k;
        std::this_thread::sleep_until(at);
        if (!fulcrum) {
          try {
            raw.call(t);
          } catch (const std::exception&) {
            errors.fetch_add(1);
          }
          lat[t].push_back(static_cast<uint32_t>((steady_clock::now() - at).count()));
          continue;
        }
        pending.fetch_add(1);
        fulcrum::testing::EchoAsync(*channel, payload)
            .OnReady([&, t, at](fulcrum::Future<std::string> f) {
              try {
                f.get();
              } catch (const std::exception&) {
                errors.fetch_add(1);
              }
              const auto ns = (steady_clock::now() - at).count();
              {
                std::lock_guard<std::mutex> lock(mu);
                lat[t].push_back(static_cast<uint32_t>(std::min<int64_t>(ns, 4'000'000'000)));
              }
              pending.fetch_sub(1);
            });
      }
    });
  }
  for (auto& s : senders) s.join();
  while (pending.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  OpenLoopResult r;
  int64_t calls = 0;
  for (auto& v : lat) {
    calls += static_cast<int64_t>(v.size());
    r.latency_ns.insert(r.latency_ns.end(), v.begin(), v.end());
  }
  r.client_cpu_per_call = (CpuSeconds() - cpu0) * 1e6 / std::max<double>(1, calls);
  std::sort(r.latency_ns.begin(), r.latency_ns.end());
  r.errors = errors.load();
  if (!fulcrum) raw.close();
  return r;
}

int OfferedLoad() {
  const std::string payload(static_cast<size_t>(std::max(0, FLAGS_payload)), 'x');
  std::printf(
      "| client | servers | round | offered calls/s | p50 us | p90 us | p99 us | p99.9 us "
      "| client CPU us/call | errors |\n|---|---|---|---|---|---|---|---|---|---|\n");
  int64_t failed = 0;
  for (const std::string& count : Split(FLAGS_servers)) {
    const int n = std::stoi(count);
    for (int round = 1; round <= FLAGS_runs; ++round) {
      for (int k = 0; k < 2; ++k) {
        const bool fulcrum = (k + round) % 2 == 0;  // alternate which goes first
        Servers servers = StartServers(n);
        OpenLoopResult r = OpenLoop(fulcrum, servers.ports, payload);
        Totals t;
        t.latency_ns = std::move(r.latency_ns);
        std::printf("| %-26s | %d | %d | %d | %.1f | %.1f | %.1f | %.1f | %.2f | %" PRId64 " |\n",
                    fulcrum ? "fulcrum async (open loop)" : "raw thrift (open loop)", n, round,
                    FLAGS_rate, t.Percentile(0.5), t.Percentile(0.9), t.Percentile(0.99),
                    t.Percentile(0.999), r.client_cpu_per_call, r.errors);
        std::fflush(stdout);
        failed += r.errors;
      }
    }
  }
  return failed > 0 ? 1 : 0;
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
  fulcrum::ParseCommandLine(
      &argc, &argv,
      "usage: fulcrum_load [--servers=1,3] [--threads=8] [--seconds=S] [--runs=N] [flags]\n  "
      "Fulcrum vs raw Thrift, end to end (see bench/load.cc).");
  google::InitGoogleLogging(argv[0]);
  std::signal(SIGPIPE, SIG_IGN);
  if (FLAGS_serve_listeners > 0) return ServeListeners();
  if (FLAGS_memory_endpoints > 0) return Memory();
  if (FLAGS_slow_servers > 0) return SlowNode();
  if (FLAGS_in_flight > 0) return InFlight();
  if (FLAGS_rate > 0) return OfferedLoad();
  if (FLAGS_separate) return Separate();
  return Throughput();
}
