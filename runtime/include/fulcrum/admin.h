// Admin: an opt-in HTTP listener with the process's operational pages, for people and for
// Prometheus. Off unless started; loopback by default.
//
//   // A client program (servers: ServeOptions::admin_port starts it for them):
//   fulcrum::Status s = fulcrum::Admin::Global().Start({.port = 0});   // 0: the OS picks
//   LOG(INFO) << "http://127.0.0.1:" << fulcrum::Admin::Global().port() << "/status";
//
// Pages (GET or HEAD):
//   /metrics   Prometheus text format: fulcrum::Metrics::Global() (fulcrum/metrics.h)
//   /healthz   200 "ok" while the process can answer at all
//   /readyz    200 "ready" when every Server in the process serves and every
//              ServerRegistration is registered and not draining; else 503 and why
//   /status    HTML: each channel's endpoints (state, calls, failures, latency, connections)
//              and methods, each server's methods, registrations and roles;
//              /status?format=json: the same as JSON
//   /flags     every gflags flag and its value, one per line
// SetPage adds a page or replaces one (fulcrum-registry replaces /status with its own).
//
// A bad request never blocks or crashes the process: only GET and HEAD (405 otherwise),
// unknown paths 404, oversized headers 431, a request must arrive within
// AdminOptions::request_timeout, at most max_connections at once (then 503). Pages are served
// by one thread; keep handlers quick.
//
// Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "fulcrum/clock.h"
#include "fulcrum/status.h"

namespace fulcrum {

namespace internal {
class HttpServer;
}

struct AdminOptions {
  // Loopback by default: the pages describe the process's peers and flags. Put a proxy with
  // authentication in front before binding anything wider.
  std::string host = "127.0.0.1";
  int port = 0;  // 0: the OS picks one; read it back with port()
  int max_connections = 32;
  Duration request_timeout = std::chrono::seconds(5);  // a whole request, from connect or
                                                       // from the previous reply
  Duration write_timeout = std::chrono::seconds(10);
  size_t max_header_bytes = 8 * 1024;
  size_t max_body_bytes = 16 * 1024;
};

struct AdminRequest {
  std::string method;  // "GET" or "HEAD"
  std::string path;    // "/status"
  std::string query;   // "format=json" (undecoded)
  // The value of `name` in the query string, "" if absent.
  std::string Param(std::string_view name) const;
};

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using AdminPage = std::function<AdminResponse(const AdminRequest&)>;

class Admin {
 public:
  // The process's instance (never destroyed).
  static Admin& Global();

  Admin();
  ~Admin();
  Admin(const Admin&) = delete;
  Admin& operator=(const Admin&) = delete;

  // Binds and serves. kInvalidArgument if already started, kUnavailable if the address cannot
  // be bound.
  Status Start(const AdminOptions& options = {});
  void Stop();
  // The port listened on; 0 when not started.
  int port() const;

  // Adds or replaces the page at `path` (exact match, query ignored). Any time.
  void SetPage(std::string path, AdminPage page);

 private:
  AdminResponse Serve(const AdminRequest& request) const;

  mutable std::mutex mu_;
  std::map<std::string, AdminPage> pages_;  // guarded by mu_
  std::unique_ptr<internal::HttpServer> http_;
};

}  // namespace fulcrum
