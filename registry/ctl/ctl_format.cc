#include "ctl/ctl_format.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace fulcrum::registry {
namespace {

// "host:port", "[v6]:port": as the registry names instances.
std::string Address(const std::string& host, int32_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string HealthName(thrift::Health::type h) { return h == thrift::Health::UP ? "UP" : "DOWN"; }

std::string RoleName(thrift::Role::type r) {
  switch (r) {
    case thrift::Role::MASTER:
      return "MASTER";
    case thrift::Role::SLAVE:
      return "SLAVE";
    default:
      return "NONE";
  }
}

nlohmann::json GroupJson(const thrift::GroupState& g) {
  return {{"service", g.service_name},
          {"group", g.group},
          {"epoch", g.epoch},
          {"master", g.master_address},
          {"switchover_target", g.switchover_target},
          {"commit_floor", g.commit_floor},
          {"stalled", g.stalled}};
}

std::string Age(int64_t ms) {
  if (ms < 0) return "-";  // not known (etcd)
  char buf[32];
  if (ms < 10'000) {
    std::snprintf(buf, sizeof(buf), "%.1fs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(ms / 1000));
  }
  return buf;
}

std::string Rate(double r) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", r);
  return buf;
}

}  // namespace

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

std::string FormatServices(const std::vector<thrift::ServiceSummary>& services, bool json) {
  if (json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& s : services) {
      j.push_back({{"service", s.service_name},
                   {"version", s.version},
                   {"instances", s.instances},
                   {"up", s.up},
                   {"drained", s.drained}});
    }
    return j.dump(2) + "\n";
  }
  if (services.empty()) return "no services registered\n";
  std::vector<std::vector<std::string>> rows = {{"SERVICE", "INSTANCES", "UP", "DRAINED"}};
  for (const auto& s : services) {
    rows.push_back({s.service_name, std::to_string(s.instances), std::to_string(s.up),
                    std::to_string(s.drained)});
  }
  return RenderTable(rows);
}

std::string FormatInstances(const thrift::ServiceSnapshot& snapshot, bool json) {
  if (json) {
    nlohmann::json instances = nlohmann::json::array();
    for (const auto& s : snapshot.instances) {
      instances.push_back({{"address", Address(s.instance.host, s.instance.port)},
                           {"host", s.instance.host},
                           {"port", s.instance.port},
                           {"health", HealthName(s.health)},
                           {"weight", s.effective_weight},
                           {"registered_weight", s.instance.weight},
                           {"admin_weight_set", s.admin_weight_set},
                           {"zone", s.instance.zone},
                           {"drained", s.drained},
                           {"last_heartbeat_age_ms", s.last_heartbeat_age_ms},
                           {"in_flight", s.load.in_flight},
                           {"calls_per_second", s.load.calls_per_second},
                           {"metadata", s.instance.metadata},
                           {"group", s.group},
                           {"role", RoleName(s.role)},
                           {"epoch", s.epoch},
                           {"replication_position", s.replication_position},
                           {"priority", s.priority}});
    }
    nlohmann::json groups = nlohmann::json::array();
    for (const auto& g : snapshot.groups) groups.push_back(GroupJson(g));
    return nlohmann::json{{"service", snapshot.service_name},
                          {"version", snapshot.version},
                          {"instances", instances},
                          {"groups", groups}}
               .dump(2) +
           "\n";
  }
  // Stateless services keep the narrower table.
  bool master_slave = !snapshot.groups.empty();
  for (const auto& s : snapshot.instances) master_slave = master_slave || !s.group.empty();
  std::vector<std::vector<std::string>> rows = {
      {"ADDRESS", "HEALTH", "WEIGHT", "ZONE", "DRAINED", "LAST-HB", "IN-FLIGHT", "CALLS/S"}};
  if (master_slave) {
    for (const char* h : {"GROUP", "ROLE", "EPOCH", "POSITION"}) rows[0].push_back(h);
  }
  for (const auto& s : snapshot.instances) {
    std::string weight = std::to_string(s.effective_weight);
    if (s.admin_weight_set) weight += " (admin)";
    rows.push_back({Address(s.instance.host, s.instance.port), HealthName(s.health), weight,
                    s.instance.zone.empty() ? "-" : s.instance.zone, s.drained ? "yes" : "no",
                    Age(s.last_heartbeat_age_ms), std::to_string(s.load.in_flight),
                    Rate(s.load.calls_per_second)});
    if (master_slave) {
      const bool grouped = !s.group.empty();
      rows.back().push_back(grouped ? s.group : "-");
      rows.back().push_back(grouped ? RoleName(s.role) : "-");
      rows.back().push_back(grouped ? std::to_string(s.epoch) : "-");
      rows.back().push_back(grouped ? std::to_string(s.replication_position) : "-");
    }
  }
  std::string out = "service " + snapshot.service_name + " (version " +
                    std::to_string(snapshot.version) + ")\n" + RenderTable(rows);
  if (!snapshot.groups.empty()) {
    std::vector<std::vector<std::string>> groups = {
        {"GROUP", "EPOCH", "MASTER", "SWITCHOVER-TO", "COMMIT-FLOOR"}};
    std::string stalled;
    for (const auto& g : snapshot.groups) {
      groups.push_back({g.group, std::to_string(g.epoch),
                        g.master_address.empty() ? "(none)" : g.master_address,
                        g.switchover_target.empty() ? "-" : g.switchover_target,
                        std::to_string(g.commit_floor)});
      if (!g.stalled.empty()) {
        stalled += "group ";
        stalled += g.group;
        stalled += " has no master: ";
        stalled += g.stalled;
        stalled += '\n';
      }
    }
    // Appends, not `out += "\n" + RenderTable(...)`: GCC 12 at -O3 reports a false
    // -Wrestrict inside that temporary's insert (GCC bug 105651).
    out += '\n';
    out += RenderTable(groups);
    out += stalled;
  }
  return out;
}

std::string FormatPromoted(const thrift::GroupState& g, bool json) {
  if (json) return GroupJson(g).dump(2) + "\n";
  return "promoted " + g.service_name + "/" + g.master_address + ": master of group " + g.group +
         ", epoch " + std::to_string(g.epoch) + "\n";
}

std::string FormatAllInstances(const std::vector<thrift::ServiceSnapshot>& snapshots, bool json) {
  if (json) {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& s : snapshots) all.push_back(nlohmann::json::parse(FormatInstances(s, true)));
    return all.dump(2) + "\n";
  }
  if (snapshots.empty()) return "no services registered\n";
  std::string out;
  for (size_t i = 0; i < snapshots.size(); ++i) {
    if (i > 0) out += "\n";
    out += FormatInstances(snapshots[i], false);
  }
  return out;
}

}  // namespace fulcrum::registry
