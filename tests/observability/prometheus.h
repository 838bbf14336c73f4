// A real Prometheus server (Debian's `prometheus` 2.42) for tests: scrapes the given targets
// on loopback every `scrape_interval`, stores in a scratch directory, and answers PromQL
// through its HTTP API.
//
//   auto prom = PrometheusProcess::Start(dir, {{"client", {"127.0.0.1:40125"}}});
//   ASSERT_TRUE(prom.ok()) << prom.status();
//   double calls = (*prom)->Query("sum(fulcrum_client_calls_total)");   // NaN: no sample
//   EXPECT_TRUE((*prom)->WaitFor("sum(up)", [](double v) { return v == 1; }));
//
// Stopped (SIGTERM, then SIGKILL) by its PID when the object goes away.
//
// Thread-compatible.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fulcrum/status.h"
#include "support/subprocess.h"

namespace fulcrum::testing {

class PrometheusProcess {
 public:
  // Jobs: job name -> "host:port" targets.
  static StatusOr<std::unique_ptr<PrometheusProcess>> Start(
      const std::string& dir, const std::map<std::string, std::vector<std::string>>& jobs,
      std::chrono::milliseconds scrape_interval = std::chrono::milliseconds(250));
  ~PrometheusProcess();

  // The sum of an instant query's result values; NaN when the result is empty or the query
  // fails (the error is logged).
  double Query(const std::string& promql) const;
  // Polls Query(promql) every 100 ms until `ok(value)` or `timeout`; logs the last value.
  bool WaitFor(const std::string& promql, const std::function<bool(double)>& ok,
               std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  int port() const { return port_; }

 private:
  PrometheusProcess(std::unique_ptr<Subprocess> process, int port)
      : process_(std::move(process)), port_(port) {}
  std::unique_ptr<Subprocess> process_;
  int port_;
};

}  // namespace fulcrum::testing
