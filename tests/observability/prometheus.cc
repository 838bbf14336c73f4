#include "prometheus.h"

#include <signal.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "support/http_client.h"
#include "support/ports.h"

namespace fulcrum::testing {

namespace {

constexpr char kPrometheus[] = "/usr/bin/prometheus";

std::string Config(const std::map<std::string, std::vector<std::string>>& jobs,
                   std::chrono::milliseconds interval) {
  std::string out = "global:\n  scrape_interval: " + std::to_string(interval.count()) +
                    "ms\n  scrape_timeout: " + std::to_string(interval.count() * 4 / 5) +
                    "ms\nscrape_configs:\n";
  for (const auto& [job, targets] : jobs) {
    out += "  - job_name: " + job + "\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) out += (i ? ", '" : "'") + targets[i] + "'";
    out += "]\n";
  }
  return out;
}

}  // namespace

StatusOr<std::unique_ptr<PrometheusProcess>> PrometheusProcess::Start(
    const std::string& dir, const std::map<std::string, std::vector<std::string>>& jobs,
    std::chrono::milliseconds scrape_interval) {
  const std::string config = dir + "/prometheus.yml";
  std::ofstream(config) << Config(jobs, scrape_interval);
  // Prometheus cannot report a port the OS picked, so take one the OS picked and hand it
  // over (released just before; a collision makes the start fail and is retried).
  Status last = Status::Error(StatusCode::kUnavailable, "not started");
  for (int attempt = 0; attempt < 3; ++attempt) {
    uint16_t port = 0;
    const int held = BindLoopback(&port);
    if (held < 0) return Status::Error(StatusCode::kInternal, "no loopback port");
    ::close(held);
    SpawnOptions options;
    options.stderr_path = dir + "/prometheus.log";
    auto process = Subprocess::Spawn(
        {kPrometheus, "--config.file=" + config,
         "--storage.tsdb.path=" + dir + "/data-" + std::to_string(attempt),
         "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
        options);
    if (!process.ok()) return process.status();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (HttpGet(port, "/-/ready", std::chrono::seconds(2)).status == 200) {
        return std::unique_ptr<PrometheusProcess>(
            new PrometheusProcess(std::move(process).value(), port));
      }
      if ((*process)->Wait(std::chrono::milliseconds(0)).ok()) break;  // it exited
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    last = Status::Error(StatusCode::kUnavailable, "prometheus did not become ready on port " +
                                                       std::to_string(port) + " (see " +
                                                       options.stderr_path + ")");
  }
  return last;
}

PrometheusProcess::~PrometheusProcess() {
  if (process_->reaped()) return;
  process_->Signal(SIGTERM);
  if (!process_->Wait(std::chrono::seconds(10)).ok()) process_->Signal(SIGKILL);
}

double PrometheusProcess::Query(const std::string& promql) const {
  const HttpReply reply =
      HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql), std::chrono::seconds(5));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (reply.status != 200) {
    LOG(WARNING) << "query " << promql << ": HTTP " << reply.status << " " << reply.body;
    return nan;
  }
  const auto json = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || json.value("status", "") != "success") {
    LOG(WARNING) << "query " << promql << ": " << reply.body;
    return nan;
  }
  if (!json.contains("data") || !json.at("data").contains("result")) return nan;
  const auto& result = json.at("data").at("result");
  if (!result.is_array() || result.empty()) return nan;
  double sum = 0;
  for (const auto& sample : result) sum += std::stod(sample.at("value").at(1).get<std::string>());
  return sum;
}

bool PrometheusProcess::WaitFor(const std::string& promql, const std::function<bool(double)>& ok,
                                std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  double v = Query(promql);
  while (!ok(v)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      LOG(ERROR) << "gave up waiting on " << promql << ": last value " << v;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    v = Query(promql);
  }
  return true;
}

}  // namespace fulcrum::testing
