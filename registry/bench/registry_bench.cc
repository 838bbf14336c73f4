// registry_bench: fulcrum-registry under the load. Starts the real daemon, registers
// --instances instances spread over --services services, heartbeats each at --hb_hz from
// --hb_connections connections, parks --watchers long-polling watchers, and measures:
//   * the registry process's CPU (utime+stime from /proc) and resident memory (VmRSS);
//   * watch propagation: a probe instance is re-registered --changes_per_s times a second
//     (each a new version), and every watcher of that service records how long after the
//     register call started it saw the change (p50/p99/max);
//   * failure detection: --victims instances stop heartbeating; every watcher of their
//     service records when it saw them DOWN, minus (their last heartbeat + the timeout).
// Heartbeats go to the registry's heartbeat port when the lease names one (Lease.heartbeat_port),
// else to the main port, as FulcrumRegistrar does.
//
//   registry_bench --registry_bin=build/registry/fulcrum-registry --duration_s=20
#include <fcntl.h>
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include <thrift/TOutput.h>

#include "fulcrum/command_line.h"
#include "fulcrum/discovery/registry_connection.h"
#include "server/store.h"

DEFINE_string(registry_bin, "", "Path to fulcrum-registry");
DEFINE_int32(instances, 10000, "Instances heartbeating");
DEFINE_int32(services, 100, "Services they belong to");
DEFINE_int32(hb_connections, 1000, "Connections the heartbeats are spread over");
DEFINE_double(hb_hz, 2.0, "Heartbeats per instance per second");
DEFINE_int32(watchers, 1000, "Long-polling watchers (spread over the services)");
DEFINE_int32(duration_s, 20, "Measured period");
DEFINE_double(changes_per_s, 10, "Probe re-registrations per second (watch propagation)");
DEFINE_int32(victims, 20, "Instances that stop heartbeating halfway (failure detection)");
DEFINE_int32(heartbeat_timeout_ms, 1500, "Registry's heartbeat timeout");
DEFINE_string(registry_flags, "", "Extra flags for the registry, space-separated");
DEFINE_bool(keep_dir, false, "Keep the registry's data directory and log");
DEFINE_bool(use_heartbeat_port, true, "Heartbeat on the port the lease names, if any");

namespace {

namespace reg = fulcrum::registry;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

int port = 0;
std::atomic<int> heartbeat_port{0};  // from the leases; 0: none
std::atomic<bool> stop{false};

std::unique_ptr<fulcrum::registry_client::RegistryConnection> Connect(int recv_timeout_ms = 10000,
                                                                      int to_port = 0) {
  fulcrum::registry_client::ConnectionOptions c;
  c.port = to_port != 0 ? to_port : port;
  c.recv_timeout_ms = recv_timeout_ms;
  c.connect_timeout_ms = 5000;
  fulcrum::Status last;
  for (int attempt = 0; attempt < 50; ++attempt) {
    if (stop.load()) return nullptr;  // the registry is being stopped
    auto conn = fulcrum::registry_client::RegistryConnection::Open(c);
    if (conn.ok()) return std::move(conn).value();
    last = conn.status();
    std::this_thread::sleep_for(milliseconds(20));
  }
  LOG(FATAL) << "cannot connect to the registry: " << last;
  return nullptr;
}

std::string Service(int i) { return "svc" + std::to_string(i % FLAGS_services); }

reg::thrift::Instance MakeInstance(int i) {
  reg::thrift::Instance in;
  in.service_name = Service(i);
  in.host = "10." + std::to_string((i >> 16) & 255) + "." + std::to_string((i >> 8) & 255) + "." +
            std::to_string(i & 255);
  in.port = 9000;
  in.zone = "z" + std::to_string(i % 3);
  return in;
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

struct ProcStats {
  double cpu_s = 0;
  long rss_kb = 0;
};

ProcStats ReadProc(pid_t pid) {
  ProcStats s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream rest(content.substr(content.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stol(line.substr(6));
  }
  return s;
}

struct Samples {
  std::mutex mu;
  std::vector<double> ms;
  void Add(double v) {
    std::lock_guard lock(mu);
    ms.push_back(v);
  }
  std::string Summary() {
    std::lock_guard lock(mu);
    if (ms.empty()) return "no samples";
    std::sort(ms.begin(), ms.end());
    auto at = [&](double q) {
      return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))];
    };
    char buf[160];
    std::snprintf(buf, sizeof(buf), "n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms", ms.size(), at(0.5),
                  at(0.99), ms.back());
    return buf;
  }
};

// Probe changes: service -> (probe weight -> when the register call started).
std::mutex probe_mu;
std::map<std::string, std::map<int, Clock::time_point>> probe_sent;
// Victims: address -> when its last heartbeat was answered.
std::mutex victim_mu;
std::map<std::string, Clock::time_point> victim_last_hb;

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(
      &argc, &argv,
      "usage: fulcrum_registry_bench --registry_bin=PATH [flags]\n  Load test of fulcrum-registry: "
      "heartbeating instances, watchers, failure detection.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  ::signal(SIGPIPE, SIG_IGN);
  CHECK(!FLAGS_registry_bin.empty()) << "--registry_bin is required";

  char dir_template[] = "/tmp/registry-bench-XXXXXX";
  CHECK(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  int out[2];
  CHECK(::pipe(out) == 0);
  const std::string data_flag = "--data_dir=" + dir;
  const std::string timeout_flag =
      "--heartbeat_timeout_ms=" + std::to_string(FLAGS_heartbeat_timeout_ms);
  const std::string log_path = dir + "/registry.log";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::close(out[0]);
    const int err = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, 2);
    std::vector<std::string> args = {FLAGS_registry_bin, "--port=0", data_flag, timeout_flag,
                                     "--down_ttl_ms=3600000"};
    std::istringstream extra(FLAGS_registry_flags);
    for (std::string flag; extra >> flag;) args.push_back(flag);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(FLAGS_registry_bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  {
    std::string line;
    char c;
    while (::read(out[0], &c, 1) == 1 && c != '\n') line += c;
    CHECK(line.rfind("LISTENING ", 0) == 0) << "registry did not start: " << line;
    port = std::stoi(line.substr(10));
  }
  const ProcStats idle = ReadProc(pid);
  LOG(INFO) << "registry pid " << pid << " on port " << port << ", idle RSS " << idle.rss_kb
            << " kB";

  // Register everything (over a few connections), then heartbeat.
  std::vector<int64_t> leases(FLAGS_instances);
  {
    std::vector<std::thread> registering;
    const int kRegThreads = 8;
    for (int t = 0; t < kRegThreads; ++t) {
      registering.emplace_back([&, t] {
        auto conn = Connect();
        for (int i = t; i < FLAGS_instances; i += kRegThreads) {
          reg::thrift::Lease lease;
          conn->client().register_instance(lease, "", MakeInstance(i));
          leases[i] = lease.id;
          heartbeat_port = lease.heartbeat_port;
        }
      });
    }
    for (auto& t : registering) t.join();
  }
  const int hb_target = FLAGS_use_heartbeat_port ? heartbeat_port.load() : 0;
  LOG(INFO) << "registered " << FLAGS_instances << " instances in " << FLAGS_services
            << " services; heartbeating on "
            << (hb_target != 0 ? "the heartbeat port " + std::to_string(hb_target)
                               : "the main port");

  // Victims: the first instance of each of the first --victims services... spread out.
  std::vector<bool> is_victim(FLAGS_instances, false);
  for (int v = 0; v < FLAGS_victims && v < FLAGS_instances; ++v) {
    is_victim[(v * 7919) % FLAGS_instances] = true;
  }
  std::atomic<bool> victims_stop{false};
  std::atomic<int64_t> heartbeats{0};
  std::atomic<int64_t> hb_errors{0};
  std::vector<std::thread> hb_threads;
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / FLAGS_hb_hz));
  for (int t = 0; t < FLAGS_hb_connections; ++t) {
    hb_threads.emplace_back([&, t] {
      auto conn = Connect(10000, hb_target);
      std::vector<int> mine;
      for (int i = t; i < FLAGS_instances; i += FLAGS_hb_connections) mine.push_back(i);
      // Spread the connections' rounds over the period.
      auto next = Clock::now() + period * t / FLAGS_hb_connections;
      reg::thrift::LoadReport load;
      load.in_flight = 1;
      while (!stop.load()) {
        std::this_thread::sleep_until(next);
        next += period;
        for (int i : mine) {
          if (is_victim[i] && victims_stop.load()) continue;
          reg::thrift::Directives d;
          try {
            conn->client().heartbeat(d, "", leases[i], load);
            heartbeats.fetch_add(1);
          } catch (const apache::thrift::TException& e) {
            if (stop.load()) break;
            LOG_FIRST_N(WARNING, 5) << "heartbeat failed: " << e.what();
            hb_errors.fetch_add(1);
            conn = Connect(10000, hb_target);
            if (conn == nullptr) break;
          }
          if (is_victim[i] && !victims_stop.load()) {
            reg::thrift::Instance in = MakeInstance(i);
            std::lock_guard lock(victim_mu);
            victim_last_hb[in.service_name + "/" + reg::Store::Address(in.host, in.port)] =
                Clock::now();
          }
        }
      }
    });
  }

  // Watchers.
  Samples propagation;
  Samples detection;
  std::atomic<int> parked{0};
  std::vector<std::thread> watchers;
  for (int w = 0; w < FLAGS_watchers; ++w) {
    watchers.emplace_back([&, w] {
      auto conn = Connect(15000);
      const std::string service = Service(w);
      int64_t known = -1;
      int last_probe = -1;
      std::map<std::string, bool> seen_down;
      bool counted = false;
      while (!stop.load()) {
        reg::thrift::WatchResult r;
        try {
          if (!counted && known != -1) {
            parked.fetch_add(1);
            counted = true;
          }
          conn->client().watch(r, service, known, 5000);
        } catch (const apache::thrift::TException&) {
          if (stop.load()) break;
          conn = Connect(15000);
          if (conn == nullptr) break;
          continue;
        }
        const auto now = Clock::now();
        known = r.snapshot.version;
        if (!r.changed) continue;
        for (const auto& s : r.snapshot.instances) {
          if (s.instance.port == 1) {  // the probe
            if (s.instance.weight != last_probe) {
              last_probe = s.instance.weight;
              std::lock_guard lock(probe_mu);
              auto& sent = probe_sent[service];
              auto it = sent.find(last_probe);
              if (it != sent.end()) {
                propagation.Add(
                    std::chrono::duration<double, std::milli>(now - it->second).count());
              }
            }
          } else if (s.health == reg::thrift::Health::DOWN) {
            const std::string key =
                service + "/" + reg::Store::Address(s.instance.host, s.instance.port);
            if (seen_down[key]) continue;
            seen_down[key] = true;
            std::lock_guard lock(victim_mu);
            auto it = victim_last_hb.find(key);
            if (it != victim_last_hb.end()) {
              detection.Add(std::chrono::duration<double, std::milli>(
                                now - it->second - milliseconds(FLAGS_heartbeat_timeout_ms))
                                .count());
            }
          }
        }
      }
    });
  }
  while (parked.load() < FLAGS_watchers) std::this_thread::sleep_for(milliseconds(50));
  LOG(INFO) << FLAGS_watchers << " watchers parked; measuring for " << FLAGS_duration_s << " s";

  const int64_t hb_start = heartbeats.load();
  const ProcStats start = ReadProc(pid);
  const ProcStats self_start = ReadProc(::getpid());
  const auto t0 = Clock::now();
  std::thread prober([&] {
    auto conn = Connect();
    int seq = 0;
    const auto gap = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / FLAGS_changes_per_s));
    auto next = Clock::now();
    while (!stop.load()) {
      std::this_thread::sleep_until(next);
      next += gap;
      ++seq;
      reg::thrift::Instance probe;
      probe.service_name = Service(seq);
      probe.host = "127.0.0.1";
      probe.port = 1;
      probe.weight = seq;
      {
        std::lock_guard lock(probe_mu);
        probe_sent[probe.service_name][seq] = Clock::now();
      }
      reg::thrift::Lease lease;
      conn->client().register_instance(lease, "", probe);
    }
  });
  std::this_thread::sleep_for(std::chrono::seconds(FLAGS_duration_s / 2));
  victims_stop = true;
  std::this_thread::sleep_for(std::chrono::seconds(FLAGS_duration_s - FLAGS_duration_s / 2));
  const ProcStats end = ReadProc(pid);
  const ProcStats self_end = ReadProc(::getpid());
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t hb_done = heartbeats.load() - hb_start;

  stop = true;
  prober.join();
  ::kill(pid, SIGTERM);  // releases parked watchers
  for (auto& t : watchers) t.join();
  for (auto& t : hb_threads) t.join();
  int status = 0;
  ::waitpid(pid, &status, 0);

  std::printf("instances=%d services=%d hb_connections=%d watchers=%d duration=%.1fs\n",
              FLAGS_instances, FLAGS_services, FLAGS_hb_connections, FLAGS_watchers, elapsed);
  std::printf("machine load average at the end: %s (others' work skews every figure)\n",
              LoadAverage().c_str());
  std::printf("heartbeats/s=%.0f (errors %lld) on %s\n", static_cast<double>(hb_done) / elapsed,
              static_cast<long long>(hb_errors.load()),
              hb_target != 0 ? "the heartbeat port" : "the main port");
  std::printf("registry CPU=%.1f%% of one core, RSS=%ld kB (idle %ld kB)\n",
              100.0 * (end.cpu_s - start.cpu_s) / elapsed, end.rss_kb, idle.rss_kb);
  std::printf("registry CPU per heartbeat=%.1f us (all of its CPU over the heartbeats)\n",
              hb_done > 0 ? 1e6 * (end.cpu_s - start.cpu_s) / static_cast<double>(hb_done) : 0.0);
  std::printf("load generator CPU=%.1f%% of one core (same machine: %ld cores)\n",
              100.0 * (self_end.cpu_s - self_start.cpu_s) / elapsed, sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("watch propagation (register -> watcher): %s\n", propagation.Summary().c_str());
  std::printf("failure detection (DOWN seen - (last heartbeat + timeout)): %s\n",
              detection.Summary().c_str());
  if (FLAGS_keep_dir) {
    std::printf("registry log: %s\n", log_path.c_str());
  } else {
    std::string rm = "rm -rf " + dir;
    (void)std::system(rm.c_str());
  }
  return 0;
}
