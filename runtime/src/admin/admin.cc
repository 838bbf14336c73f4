#include "fulcrum/admin.h"

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <sstream>

#include "admin/http_server.h"
#include "admin/status_page.h"
#include "fulcrum/metrics.h"
#include "metrics/server_metrics.h"

namespace fulcrum {

namespace {

AdminResponse Text(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

AdminResponse MetricsPage(const AdminRequest&) {
  AdminResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = Metrics::Global().TextFormat();
  return r;
}

AdminResponse ReadyPage(const AdminRequest&) {
  std::string why;
  if (internal::ProcessReady(&why)) return Text(200, "ready\n");
  return Text(503, "not ready: " + why + "\n");
}

AdminResponse StatusPage(const AdminRequest& request) {
  const nlohmann::ordered_json status = internal::ProcessStatus();
  AdminResponse r;
  if (request.Param("format") == "json") {
    r.content_type = "application/json";
    r.body = status.dump(2) + "\n";
  } else {
    r.content_type = "text/html; charset=utf-8";
    r.body = internal::StatusHtml(status);
  }
  return r;
}

AdminResponse FlagsPage(const AdminRequest&) {
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  std::ostringstream out;
  for (const auto& f : flags) {
    out << "--" << f.name << "=" << f.current_value << (f.is_default ? "" : "  (set)") << "\n";
  }
  return Text(200, out.str());
}

AdminResponse IndexPage(const AdminRequest&) {
  AdminResponse r;
  r.content_type = "text/html; charset=utf-8";
  r.body =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
      "content=\"width=device-width, initial-scale=1\"><title>Fulcrum admin</title></head><body>"
      "<h1>Fulcrum admin</h1><ul><li><a href=\"/status\">/status</a></li><li><a "
      "href=\"/metrics\">/metrics</a></li><li><a href=\"/healthz\">/healthz</a></li><li><a "
      "href=\"/readyz\">/readyz</a></li><li><a href=\"/flags\">/flags</a></li></ul></body></html>"
      "\n";
  return r;
}

}  // namespace

std::string AdminRequest::Param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return "";
}

Admin& Admin::Global() {
  static auto* admin = new Admin;  // never destroyed: its thread may outlive static teardown
  return *admin;
}

Admin::Admin() {
  pages_["/"] = IndexPage;
  pages_["/metrics"] = MetricsPage;
  pages_["/healthz"] = [](const AdminRequest&) { return Text(200, "ok\n"); };
  pages_["/readyz"] = ReadyPage;
  pages_["/status"] = StatusPage;
  pages_["/flags"] = FlagsPage;
}

Admin::~Admin() { Stop(); }

Status Admin::Start(const AdminOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  if (http_ != nullptr) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "admin listener already started on port " + std::to_string(http_->port()));
  }
  auto http = std::make_unique<internal::HttpServer>(
      options, [this](const AdminRequest& r) { return Serve(r); });
  Status s = http->Start();
  if (!s.ok()) return s;
  LOG(INFO) << "admin pages on http://" << options.host << ":" << http->port() << "/status";
  http_ = std::move(http);
  return Status::Ok();
}

void Admin::Stop() {
  std::unique_ptr<internal::HttpServer> http;
  {
    std::lock_guard<std::mutex> lock(mu_);
    http = std::move(http_);
  }
  if (http) http->Stop();  // outside mu_: a page being served takes it
}

int Admin::port() const {
  std::lock_guard<std::mutex> lock(mu_);
  return http_ ? http_->port() : 0;
}

void Admin::SetPage(std::string path, AdminPage page) {
  std::lock_guard<std::mutex> lock(mu_);
  pages_[std::move(path)] = std::move(page);
}

AdminResponse Admin::Serve(const AdminRequest& request) const {
  AdminPage page;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pages_.find(request.path);
    if (it == pages_.end()) return Text(404, "no page " + request.path + "\n");
    page = it->second;
  }
  return page(request);
}

}  // namespace fulcrum
