// The demo: starts fulcrum-registry, then calculator_server replicas (examples/calculator)
// that register themselves with it (all on 127.0.0.1, ports picked by the OS), shows
// fulcrumctl's view, drives the generated balanced client, which finds the replicas through
// the registry, SIGKILLs one replica part-way and starts a new one later, and prints what
// happened: calls per second, per-endpoint call counts and latency percentiles, ejections, the
// error count, and fulcrumctl's view at the end. Every process serves its admin pages on
// loopback (fulcrum/admin.h): the demo prints their /status URLs and a few lines of the
// client's and the registry's /metrics; --linger_s keeps everything up that long afterwards,
// to look at the pages in a browser.
//
//   fulcrum_demo --servers=3 --threads=4 --seconds=6 --balancer=p2c_least_loaded
//
// It links what an application links: the runtime, the fulcrum:// discovery library and the
// code generated from calculator.thrift.
#include <csignal>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "calculator_fulcrum.h"
#include "child_process.h"
#include "fulcrum/admin.h"
#include "fulcrum/command_line.h"
#include "fulcrum/discovery/fulcrum.h"

DEFINE_int32(servers, 3, "calculator servers to start");
DEFINE_int32(threads, 4, "client threads");
DEFINE_double(seconds, 6, "how long to drive load");
DEFINE_double(kill_at, 0.4, "when to SIGKILL a server, as a share of --seconds (<0: never)");
DEFINE_string(balancer, "p2c_least_loaded", "the balancer to use");
DEFINE_double(add_at, 0.6, "when to start one more server, as a share of --seconds (<0: never)");
DEFINE_string(server_binary, FULCRUM_CALCULATOR_SERVER, "the server to start");
DEFINE_string(registry_binary, FULCRUM_REGISTRY, "fulcrum-registry");
DEFINE_string(ctl_binary, FULCRUM_CTL, "fulcrumctl");
DEFINE_double(linger_s, 0,
              "after the summary, keep the registry, the servers and the client's admin pages "
              "up this long (to open the printed /status URLs)");

namespace {

using std::chrono::steady_clock;

struct PerServer {
  std::vector<uint32_t> latency_ns;
};

using fulcrum_demo::ChildProcess;

// Runs fulcrumctl and prints its output, indented.
void ShowFulcrumctl(const std::string& registry, const std::string& args) {
  const std::string cmd = FLAGS_ctl_binary + " --registry=" + registry + " " + args + " 2>&1";
  std::printf("   $ fulcrumctl --registry=%s %s\n", registry.c_str(), args.c_str());
  FILE* out = popen(cmd.c_str(), "r");
  if (out == nullptr) return;
  char line[512];
  while (std::fgets(line, sizeof(line), out) != nullptr) std::printf("   %s", line);
  pclose(out);
}

// Starts one calculator replica that registers itself through `registrar_uri`.
std::unique_ptr<ChildProcess> SpawnServer(const std::string& id, const std::string& registrar_uri) {
  auto p = ChildProcess::Spawn({FLAGS_server_binary, "--id=" + id, "--registrar=" + registrar_uri,
                                "--admin_port=0", "--logtostderr", "--minloglevel=1"});
  if (!p.ok()) {
    std::fprintf(stderr, "cannot start %s: %s\n", id.c_str(), p.status().ToString().c_str());
    return nullptr;
  }
  return std::move(p).value();
}

// Waits until `server` listens (it has registered by then) and fills `address`.
bool AwaitServer(ChildProcess& server, const std::string& id, std::string* address) {
  auto port = server.WaitForLine("LISTENING ", std::chrono::seconds(20));
  if (!port.ok()) {
    std::fprintf(stderr, "%s did not start: %s\n", id.c_str(), port.status().ToString().c_str());
    return false;
  }
  *address = "127.0.0.1:" + *port;
  auto admin = server.WaitForLine("ADMIN ", std::chrono::seconds(20));
  std::printf(
      "   %s  pid %d  listening on %s, registered as service 'Calculator', status at "
      "http://127.0.0.1:%s/status\n",
      id.c_str(), server.pid(), address->c_str(), admin.ok() ? admin->c_str() : "?");
  return true;
}

// Both of the above.
std::unique_ptr<ChildProcess> StartServer(const std::string& id, const std::string& registrar_uri,
                                          std::string* address) {
  std::unique_ptr<ChildProcess> p = SpawnServer(id, registrar_uri);
  return p != nullptr && AwaitServer(*p, id, address) ? std::move(p) : nullptr;
}

// GET http://127.0.0.1:port/path: the reply, or an empty one with a result of 0 if there is
// none. Synchronous Boost.Beast: one request, on this thread.
boost::beast::http::response<boost::beast::http::string_body> HttpGet(int port,
                                                                      const std::string& path) {
  namespace http = boost::beast::http;
  using boost::asio::ip::tcp;
  http::response<http::string_body> reply;
  boost::asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code error;
  socket.connect({boost::asio::ip::address_v4::loopback(), static_cast<uint16_t>(port)}, error);
  http::request<http::empty_body> request(http::verb::get, path, 11);
  request.set(http::field::host, "127.0.0.1");
  if (!error) http::write(socket, request, error);
  boost::beast::flat_buffer buffer;
  if (!error) http::read(socket, buffer, reply, error);
  if (error) reply = {};
  return reply;
}

// Prints the lines of http://127.0.0.1:port/metrics that start with one of `prefixes`.
void ShowMetrics(int port, const std::vector<std::string>& prefixes) {
  const auto reply = HttpGet(port, "/metrics");
  std::printf("   $ curl http://127.0.0.1:%d/metrics   (HTTP %d; %zu bytes; a few lines)\n", port,
              reply.result_int(), reply.body().size());
  std::istringstream in(reply.body());
  std::string line;
  while (std::getline(in, line)) {
    for (const std::string& p : prefixes) {
      if (line.rfind(p, 0) == 0) {
        std::printf("   %s\n", line.c_str());
        break;
      }
    }
  }
}

double Percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k] / 1e3;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(
      &argc, &argv,
      "usage: fulcrum_demo [--balancer=NAME] [--servers=N] [--threads=N] [--seconds=S] "
      "[--kill_at=F] [--add_at=F]\n  Fulcrum demo: balancing and failover on loopback.");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // interleave with log lines in order
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;  // warnings and up: ejections show, routine info does not
  google::InitGoogleLogging(argv[0]);
  std::signal(SIGPIPE, SIG_IGN);
  if (FLAGS_servers < 2 || FLAGS_threads < 1 || FLAGS_seconds <= 0) {
    std::fprintf(stderr, "need --servers >= 2, --threads >= 1, --seconds > 0\n");
    return 2;
  }

  // The registry: its admin state in a scratch folder, its token in a file (never on a
  // command line, where ps would show it).
  char scratch_template[] = "/tmp/fulcrum-demo-XXXXXX";
  const char* scratch = mkdtemp(scratch_template);
  if (scratch == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string token_file = std::string(scratch) + "/token";
  {
    std::ofstream token(token_file);
    token << "demo-" << getpid() << "-"
          << std::chrono::steady_clock::now().time_since_epoch().count() << "\n";
  }
  std::printf("== starting fulcrum-registry on 127.0.0.1\n");
  auto registry =
      ChildProcess::Spawn({FLAGS_registry_binary, "--port=0", "--data_dir=" + std::string(scratch),
                           "--token_file=" + token_file, "--minloglevel=2", "--admin_port=0"});
  if (!registry.ok()) {
    std::fprintf(stderr, "cannot start the registry: %s\n", registry.status().ToString().c_str());
    return 1;
  }
  auto registry_port = (*registry)->WaitForLine("LISTENING ", std::chrono::seconds(20));
  if (!registry_port.ok()) {
    std::fprintf(stderr, "the registry did not start: %s\n",
                 registry_port.status().ToString().c_str());
    return 1;
  }
  auto registry_admin = (*registry)->WaitForLine("ADMIN ", std::chrono::seconds(20));
  if (!registry_admin.ok()) {
    std::fprintf(stderr, "the registry's admin pages did not start: %s\n",
                 registry_admin.status().ToString().c_str());
    return 1;
  }
  const int registry_admin_port = std::stoi(*registry_admin);
  const std::string registry_address = "127.0.0.1:" + *registry_port;
  const std::string registrar_uri = "fulcrum://" + registry_address + "?token_file=" + token_file;
  std::printf(
      "   fulcrum-registry  pid %d  listening on %s, status at http://127.0.0.1:%d/status\n",
      (*registry)->pid(), registry_address.c_str(), registry_admin_port);

  std::printf("== starting %d calculator servers; each registers itself and heartbeats\n",
              FLAGS_servers);
  std::vector<std::unique_ptr<ChildProcess>> servers;
  std::map<std::string, std::string> address_of;  // server id -> host:port
  for (int i = 0; i < FLAGS_servers; ++i) {
    const std::string id = "server-" + std::to_string(i + 1);
    auto p = StartServer(id, registrar_uri, &address_of[id]);
    if (p == nullptr) return 1;
    servers.push_back(std::move(p));
  }

  CHECK(fulcrum::RegisterFulcrumDiscovery().ok());
  // The generated client's options (service name, the IDL's balancer), with --balancer's.
  fulcrum::ChannelOptions opts = calc::fulcrum_gen::CalculatorChannelOptions();
  opts.balancer = FLAGS_balancer;
  const std::string target = "fulcrum://" + registry_address + "/" + opts.service_name;
  auto channel = fulcrum::Channel::Create(target, opts);
  if (!channel.ok()) {
    std::fprintf(stderr, "cannot create the channel: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  calc::fulcrum_gen::CalculatorBalancedClient client(*channel);
  fulcrum::Channel& ch = **channel;
  const auto found_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ch.Endpoints().size() < static_cast<size_t>(FLAGS_servers) &&
         std::chrono::steady_clock::now() < found_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf("== the client found %zu endpoint(s) through the registry (%s)\n",
              ch.Endpoints().size(), target.c_str());
  ShowFulcrumctl(registry_address, "show " + opts.service_name);
  if (fulcrum::Status s = fulcrum::Admin::Global().Start(); !s.ok()) {
    std::fprintf(stderr, "cannot serve the client's admin pages: %s\n", s.ToString().c_str());
    return 1;
  }
  const int client_admin_port = fulcrum::Admin::Global().port();
  std::printf("== admin pages (loopback only; also /metrics, /healthz, /readyz, /flags)\n");
  std::printf("   registry  http://127.0.0.1:%d/status   (live: services, instances, groups)\n",
              registry_admin_port);
  std::printf("   client    http://127.0.0.1:%d/status   (endpoints, methods; ?format=json)\n",
              client_admin_port);

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
          std::string who;
          client.whoami(who);
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
  const double add_at = FLAGS_add_at < 0 ? 1e9 : FLAGS_add_at * FLAGS_seconds;
  bool killed = false;
  bool added = false;
  int64_t last_calls = 0;
  double last_at = 0;
  // The added server is spawned by this thread and awaited on another: waiting for it to come
  // up must not stall the progress lines (on two busy cores that takes a second or more).
  std::thread adder;
  std::unique_ptr<ChildProcess> added_server;
  bool added_up = false;
  std::string added_id;
  std::string added_address;
  // Failed attempts per address, as last reported by the channel: an endpoint the watch
  // removed is no longer in its reports, but what it cost before that still counts.
  std::map<std::string, uint64_t> failed_attempts;
  auto note_failures = [&] {
    for (const auto& r : ch.Endpoints()) failed_attempts[r.address] = r.failures;
  };
  for (int tick = 1; tick <= static_cast<int>(FLAGS_seconds * 2); ++tick) {
    std::this_thread::sleep_until(start + std::chrono::milliseconds(500 * tick));
    const double now = std::chrono::duration<double>(steady_clock::now() - start).count();
    const int64_t c = calls.load();
    std::printf("   t=%4.1fs  %7.0f calls/s  errors so far: %lld\n", now,
                (c - last_calls) / std::max(1e-3, now - last_at),
                static_cast<long long>(errors.load()));
    last_calls = c;
    last_at = now;
    note_failures();
    if (!killed && now >= kill_at) {
      killed = true;
      std::printf("== SIGKILL server-2 (pid %d) under load\n", servers[1]->pid());
      servers[1]->Signal(SIGKILL);
      servers[1]->Wait(std::chrono::seconds(5));
    }
    if (!added && now >= add_at) {
      added = true;
      added_id = "server-" + std::to_string(FLAGS_servers + 1);
      std::printf("== starting %s under load: it registers, the client's watch picks it up\n",
                  added_id.c_str());
      added_server = SpawnServer(added_id, registrar_uri);
      if (added_server != nullptr) {
        adder =
            std::thread([&] { added_up = AwaitServer(*added_server, added_id, &added_address); });
      }
    }
  }
  stop = true;
  for (auto& t : threads) t.join();
  if (adder.joinable()) adder.join();
  if (added_server != nullptr) {
    if (added_up) address_of[added_id] = added_address;
    servers.push_back(std::move(added_server));  // stopped with the others
  }
  const double elapsed = std::chrono::duration<double>(steady_clock::now() - start).count();

  std::printf("\n== per endpoint (as the balanced client saw them)\n");
  std::printf("   %-9s %-16s %9s %7s %9s %9s %9s %8s\n", "server", "address", "calls", "share",
              "p50 us", "p99 us", "failures", "state");
  note_failures();
  std::map<std::string, fulcrum::EndpointReport> reports;
  for (const auto& r : ch.Endpoints()) reports[r.address] = r;
  for (auto& [id, address] : address_of) {
    auto& lat = per_server[id].latency_ns;
    auto it = reports.find(address);
    const bool listed = it != reports.end();
    const char* state = !listed ? "removed" : it->second.ejected ? "ejected" : "serving";
    std::printf("   %-9s %-16s %9zu %6.1f%% %9.0f %9.0f %9llu %8s\n", id.c_str(), address.c_str(),
                lat.size(), 100.0 * lat.size() / std::max<int64_t>(1, calls.load()),
                Percentile(lat, 0.5), Percentile(lat, 0.99),
                static_cast<unsigned long long>(failed_attempts[address]), state);
  }
  std::printf("\n== %lld calls in %.1f s (%.0f/s), %lld errors seen by the application\n",
              static_cast<long long>(calls.load()), elapsed, calls.load() / elapsed,
              static_cast<long long>(errors.load()));
  std::printf(
      "   Attempts that failed on the killed server were retried on the others (whoami\n"
      "   is idempotent); after %u consecutive failures the client ejected it, and once its\n"
      "   heartbeats stopped the registry marked it DOWN and the client's watch removed it.\n",
      opts.outlier.consecutive_failures);
  for (const std::string& e : error_samples) std::printf("   error: %s\n", e.c_str());

  std::printf("\n== the registry's view (server-2 stopped heartbeating: DOWN)\n");
  ShowFulcrumctl(registry_address, "show " + opts.service_name);

  std::printf("\n== the client's metrics (Prometheus text; docs/observability.md lists them)\n");
  ShowMetrics(client_admin_port, {"fulcrum_client_calls_total", "fulcrum_client_retries_total",
                                  "fulcrum_client_ejections_total", "fulcrum_client_endpoints{",
                                  "fulcrum_client_call_duration_seconds_count"});
  std::printf("== the registry's metrics\n");
  ShowMetrics(registry_admin_port, {"fulcrum_registry_instances{", "fulcrum_registry_down_total",
                                    "fulcrum_registry_registrations_total"});
  if (FLAGS_linger_s > 0) {
    std::printf("\n== everything stays up for %.0f s: open the /status URLs above\n",
                FLAGS_linger_s);
    std::this_thread::sleep_for(std::chrono::duration<double>(FLAGS_linger_s));
  }

  ch.Shutdown();
  fulcrum::Admin::Global().Stop();
  std::printf("\n== SIGTERM the servers (each deregisters, drains, exits) and the registry\n");
  for (auto& s : servers) {
    if (!s->reaped()) s->Signal(SIGTERM);
  }
  for (auto& s : servers) {
    if (!s->reaped()) s->Wait(std::chrono::seconds(30));
  }
  (*registry)->Signal(SIGTERM);
  (*registry)->Wait(std::chrono::seconds(10));
  std::filesystem::remove_all(scratch);
  return errors.load() == 0 ? 0 : 1;
}
