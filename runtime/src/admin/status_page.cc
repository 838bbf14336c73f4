#include "admin/status_page.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <sstream>

#include "fulcrum/channel.h"
#include "fulcrum/registrar.h"
#include "fulcrum/role.h"
#include "fulcrum/server.h"
#include "metrics/client_metrics.h"
#include "metrics/live_set.h"
#include "metrics/server_metrics.h"

namespace fulcrum::internal {

using json = nlohmann::ordered_json;

namespace {

const auto kProcessStart = std::chrono::steady_clock::now();

double Ms(double seconds) { return std::round(seconds * 1e6) / 1e3; }  // to 1 us

json Latency(const HistogramData& h) {
  const uint64_t n = h.count();
  return {{"latency_mean_ms", n ? Ms(static_cast<double>(h.sum_ns) / 1e9 / n) : 0},
          {"latency_p50_ms", Ms(h.QuantileSeconds(0.5))},
          {"latency_p99_ms", Ms(h.QuantileSeconds(0.99))}};
}

json ChannelStatus(const ChannelMetrics& m) {
  const Channel& channel = m.channel();
  json endpoints = json::array();
  for (const EndpointReport& e : channel.Endpoints()) {
    endpoints.push_back({{"address", e.address},
                         {"weight", e.weight},
                         {"state", e.ejected ? "ejected" : "serving"},
                         {"in_flight", e.in_flight},
                         {"calls", e.calls},
                         {"failures", e.failures},
                         {"latency_ewma_ms", std::round(e.ewma_ms * 1e3) / 1e3},
                         {"open_connections", e.open_connections},
                         {"idle_connections", e.idle_connections}});
  }
  json methods = json::array();
  m.methods().ForEach([&](std::string_view name, const ClientMethodStats& s) {
    json j = {{"method", std::string(name)}, {"calls", s.calls()},     {"errors", s.errors()},
              {"attempts", s.attempts()},    {"retries", s.retries()}, {"hedges", s.hedges()},
              {"hedges_won", s.hedges_won()}};
    j.update(Latency(s.latency()));
    methods.push_back(std::move(j));
  });
  const double age = m.EndpointSetAgeSeconds();
  return {{"service", m.service()},
          {"balancer", m.balancer()},
          {"panic", channel.panic()},
          {"endpoint_set_age_s", age < 0 ? json(nullptr) : json(std::round(age * 1e3) / 1e3)},
          {"ejections", m.ejections()},
          {"retry_budget_exhausted", channel.budget_exhausted()},
          {"endpoints", std::move(endpoints)},
          {"methods", std::move(methods)}};
}

json ServerStatus(const ServerMetrics& m) {
  json methods = json::array();
  m.methods().ForEach([&](std::string_view fn, const ServerMethodStats& s) {
    json j = {{"method", std::string(fn)}, {"calls", s.calls()}, {"failures", s.failures()}};
    j.update(Latency(s.latency()));
    methods.push_back(std::move(j));
  });
  const Server& server = m.server();
  return {{"address", m.address()},          {"serving", server.serving()},
          {"in_flight", server.in_flight()}, {"connections", server.connections()},
          {"requests", server.calls()},      {"methods", std::move(methods)}};
}

json RegistrationStatus(const RegistrationMetrics& r) {
  json j = {{"service", r.service},
            {"instance", r.address},
            {"registered", r.registrar != nullptr && r.registrar->registered()},
            {"draining", r.draining.load()}};
  if (r.role != nullptr) {
    const RoleInfo info = r.role->info();
    j["group"] = r.group;
    j["role"] = info.role == InstanceRole::kMaster  ? "master"
                : info.role == InstanceRole::kSlave ? "slave"
                                                    : "none";
    j["epoch"] = info.epoch;
    j["master"] = info.master_address;
    j["lease_remaining_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(r.role->LeaseRemaining()).count();
    j["writes_refused"] = r.role->writes_refused();
  }
  return j;
}

// One HTML table from an array of flat JSON objects; nested values are skipped.
void Table(std::ostringstream& out, const json& rows) {
  if (!rows.is_array() || rows.empty()) {
    out << "<p class=\"none\">none</p>\n";
    return;
  }
  out << "<div class=\"scroll\"><table><thead><tr>";
  std::vector<std::string> columns;
  for (const auto& [key, value] : rows.front().items()) {
    if (value.is_array() || value.is_object()) continue;
    columns.push_back(key);
    out << "<th>" << HtmlEscape(key) << "</th>";
  }
  out << "</tr></thead><tbody>\n";
  for (const json& row : rows) {
    out << "<tr>";
    for (const std::string& c : columns) {
      const json& v = row.contains(c) ? row.at(c) : json(nullptr);
      const std::string text = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
      out << "<td data-label=\"" << HtmlEscape(c) << "\" class=\"v-" << HtmlEscape(text) << "\">"
          << HtmlEscape(text) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody></table></div>\n";
}

constexpr char kStyle[] = R"css(
body { font-family: system-ui, sans-serif; margin: 0 auto; padding: 12px; max-width: 1200px;
       color: #1d2330; background: #f6f7f9; }
h1 { font-size: 1.3em; } h2 { font-size: 1.1em; margin-top: 1.6em; } h3 { font-size: 1em; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 8px 12px;
        margin: 10px 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceff3; white-space: nowrap; }
th { color: #5b6475; font-weight: 600; }
.v-ejected, .v-false, .v-DOWN { color: #b3261e; font-weight: 600; }
.v-serving, .v-UP { color: #1e7b34; }
.none { color: #8a93a3; } a { color: #1d5fbf; }
@media (max-width: 640px) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr { border-bottom: 2px solid #dde1e7; padding: 4px 0; }
  td { border: none; padding: 2px 4px; white-space: normal; }
  td::before { content: attr(data-label) ": "; color: #5b6475; }
}
)css";

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

json ProcessStatus() {
  json channels = json::array(), servers = json::array(), registrations = json::array();
  LiveChannels().ForEach([&](const ChannelMetrics& m) { channels.push_back(ChannelStatus(m)); });
  LiveServers().ForEach([&](const ServerMetrics& m) { servers.push_back(ServerStatus(m)); });
  LiveRegistrations().ForEach(
      [&](const RegistrationMetrics& r) { registrations.push_back(RegistrationStatus(r)); });
  std::string why;
  const bool ready = ProcessReady(&why);
  return {{"pid", static_cast<int64_t>(::getpid())},
          {"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::steady_clock::now() - kProcessStart)
                           .count()},
          {"ready", ready},
          {"not_ready_because", why},
          {"channels", std::move(channels)},
          {"servers", std::move(servers)},
          {"registrations", std::move(registrations)}};
}

std::string StatusHtml(const json& status) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
         "<meta http-equiv=\"refresh\" content=\"5\"><title>Fulcrum status</title><style>"
      << kStyle << "</style></head><body>\n";
  out << "<h1>Fulcrum process " << status.value("pid", 0) << "</h1>\n<p>up "
      << status.value("uptime_s", 0) << " s, "
      << (status.value("ready", false)
              ? "ready"
              : "<b>not ready</b>: " + HtmlEscape(status.value("not_ready_because", "")))
      << " &middot; <a href=\"/status?format=json\">JSON</a> &middot; <a href=\"/metrics\">"
         "metrics</a> &middot; <a href=\"/flags\">flags</a> &middot; refreshes every 5 s</p>\n";
  out << "<h2>Channels</h2>\n";
  if (status.at("channels").empty()) out << "<p class=\"none\">none</p>\n";
  for (const json& c : status.at("channels")) {
    out << "<div class=\"card\"><h3>" << HtmlEscape(c.value("service", "")) << " <small>("
        << HtmlEscape(c.value("balancer", "")) << (c.value("panic", false) ? ", PANIC" : "")
        << ")</small></h3>\n<p>endpoints</p>\n";
    Table(out, c.at("endpoints"));
    out << "<p>methods</p>\n";
    Table(out, c.at("methods"));
    out << "</div>\n";
  }
  out << "<h2>Servers</h2>\n";
  if (status.at("servers").empty()) out << "<p class=\"none\">none</p>\n";
  for (const json& s : status.at("servers")) {
    out << "<div class=\"card\"><h3>" << HtmlEscape(s.value("address", "")) << " <small>("
        << (s.value("serving", false) ? "serving" : "stopped") << ", " << s.value("connections", 0)
        << " connections, " << s.value("in_flight", 0) << " in flight)</small></h3>\n";
    Table(out, s.at("methods"));
    out << "</div>\n";
  }
  out << "<h2>Registrations</h2>\n";
  Table(out, status.at("registrations"));
  out << "</body></html>\n";
  return out.str();
}

}  // namespace fulcrum::internal
