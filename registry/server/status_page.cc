#include "server/status_page.h"

#include <unistd.h>

#include <chrono>

#include "server/store.h"

namespace fulcrum::registry {

using nlohmann::json;

namespace {

const auto kStart = std::chrono::steady_clock::now();

const char* RoleName(thrift::Role::type role) {
  switch (role) {
    case thrift::Role::MASTER:
      return "master";
    case thrift::Role::SLAVE:
      return "slave";
    default:
      return "";
  }
}

// The page: a shell that renders /status?format=json, polled every second. Built with DOM
// calls and textContent only, so nothing a registrant sends is ever parsed as HTML.
constexpr char kPage[] = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fulcrum-registry</title>
<style>
:root { --bad: #b3261e; --good: #1e7b34; --muted: #5b6475; --line: #e3e6eb; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d2330;
       background: #f5f6f8; }
header { background: #1d2330; color: #fff; padding: 10px 16px; display: flex; flex-wrap: wrap;
         gap: 4px 16px; align-items: baseline; }
header h1 { font-size: 1.15em; margin: 0; }
header .meta { font-size: 0.85em; opacity: 0.8; }
main { padding: 8px 12px; max-width: 1280px; margin: 0 auto; }
.summary { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0 4px; }
.stat { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px 12px;
        min-width: 110px; }
.stat b { display: block; font-size: 1.4em; }
.stat span { color: var(--muted); font-size: 0.8em; }
section.service { background: #fff; border: 1px solid var(--line); border-radius: 8px;
                  margin: 12px 0; padding: 4px 12px 10px; }
section.service h2 { font-size: 1.05em; margin: 8px 0; display: flex; flex-wrap: wrap;
                     gap: 4px 12px; align-items: baseline; }
section.service h2 small { color: var(--muted); font-weight: normal; }
h3 { font-size: 0.9em; color: var(--muted); margin: 10px 0 4px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88em; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
th { color: var(--muted); font-weight: 600; white-space: nowrap; }
td { font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 0.85em;
         font-weight: 600; }
.UP { background: #e3f4e7; color: var(--good); }
.DOWN { background: #fbe4e2; color: var(--bad); }
.drained { background: #fff3d6; color: #8a5a00; }
tr.down td { background: #fff7f6; }
.master { font-weight: 600; }
#error { color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); }
@media (max-width: 700px) {
  thead { display: none; }
  table, tbody, tr, td { display: block; width: 100%; }
  tr { border-bottom: 2px solid var(--line); padding: 6px 0; }
  td { border: none; padding: 1px 4px; }
  td::before { content: attr(data-label) ": "; color: var(--muted); }
}
</style>
</head>
<body>
<header><h1>fulcrum-registry</h1>
<span class="meta" id="meta">loading&hellip;</span><span id="error"></span></header>
<main>
<div class="summary" id="summary"></div>
<div id="services"><p class="empty">loading&hellip;</p></div>
<noscript><p>This page needs JavaScript; the data is at <a href="/status?format=json">
/status?format=json</a>.</p></noscript>
</main>
<script>
"use strict";
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function table(columns, rows, rowAttrs) {
  const t = el("table"), head = el("thead"), hr = el("tr"), body = el("tbody");
  for (const [label] of columns) hr.appendChild(el("th", {}, label));
  head.appendChild(hr); t.appendChild(head);
  for (const row of rows) {
    const tr = el("tr", rowAttrs ? rowAttrs(row) : {});
    for (const [label, cell] of columns) {
      const td = el("td", {"data-label": label});
      const v = cell(row);
      if (v instanceof Node) td.appendChild(v); else td.textContent = v;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  t.appendChild(body);
  return t;
}
function age(ms) {
  if (ms < 1000) return ms + " ms ago";
  if (ms < 120000) return (ms / 1000).toFixed(1) + " s ago";
  return Math.round(ms / 60000) + " min ago";
}
function stat(value, label) {
  const d = el("div", {class: "stat"});
  d.appendChild(el("b", {}, value)); d.appendChild(el("span", {}, label));
  return d;
}
function render(s) {
  document.getElementById("meta").textContent =
      "pid " + s.registry.pid + " \u00b7 up " + s.registry.uptime_s + " s \u00b7 updated " +
      new Date().toLocaleTimeString();
  const summary = document.getElementById("summary");
  summary.replaceChildren(stat(s.services.length, "services"),
                          stat(s.registry.instances_up, "instances up"),
                          stat(s.registry.instances_down, "instances down"),
                          stat(s.registry.watchers, "watchers"));
  const root = document.getElementById("services");
  root.replaceChildren();
  if (s.services.length === 0) root.appendChild(el("p", {class: "empty"}, "no services yet"));
  for (const svc of s.services) {
    const sec = el("section", {class: "service", "data-service": svc.name});
    const h = el("h2", {}, svc.name);
    const up = svc.instances.filter(i => i.health === "UP").length;
    h.appendChild(el("small", {}, up + "/" + svc.instances.length + " up \u00b7 version " +
                                      svc.version));
    sec.appendChild(h);
    sec.appendChild(el("h3", {}, "instances"));
    sec.appendChild(table([
      ["address", i => i.address],
      ["health", i => el("span", {class: "badge " + i.health}, i.health)],
      ["weight", i => i.weight + (i.admin_weight ? " (admin)" : "")],
      ["zone", i => i.zone || "\u2014"],
      ["drained", i => i.drained ? el("span", {class: "badge drained"}, "drained") : "no"],
      ["last heartbeat", i => age(i.last_heartbeat_ms)],
      ["in flight", i => i.in_flight],
      ["calls/s", i => i.calls_per_second.toFixed(1)],
      ["role", i => i.role ? i.role + " (" + i.group + ", epoch " + i.epoch + ")" : "\u2014"],
      ["position", i => i.role ? i.replication_position : "\u2014"],
    ], svc.instances, i => ({"class": "instance " + (i.health === "DOWN" ? "down" : "up"),
                            "data-address": i.address, "data-health": i.health})));
    if (svc.groups.length > 0) {
      sec.appendChild(el("h3", {}, "master-slave groups"));
      sec.appendChild(table([
        ["group", g => g.group],
        ["epoch", g => g.epoch],
        ["master", g => g.master ? el("span", {class: "master"}, g.master)
                                 : g.stalled ? "none: " + g.stalled : "none (failover)"],
        ["commit floor", g => g.commit_floor],
        ["positions", g => g.members.map(m => m.address + "=" + m.replication_position +
                                              (m.health === "DOWN" ? " (DOWN)" : "")).join(", ")],
        ["switchover", g => g.switchover_target ? "to " + g.switchover_target : "\u2014"],
      ], svc.groups, g => ({"class": "group", "data-group": g.group})));
    }
    root.appendChild(sec);
  }
}
async function poll() {
  try {
    const r = await fetch("/status?format=json", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot reach the registry: " + e.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
)html";

}  // namespace

json RegistryStatus(const Store& store) {
  json services = json::array();
  int up = 0, down = 0;
  for (const thrift::ServiceSummary& summary : store.ListServices()) {
    const thrift::ServiceSnapshot snap = store.Lookup(summary.service_name);
    json instances = json::array();
    for (const thrift::InstanceState& s : snap.instances) {
      const bool is_up = s.health == thrift::Health::UP;
      (is_up ? up : down) += 1;
      instances.push_back({{"address", Store::Address(s.instance.host, s.instance.port)},
                           {"health", is_up ? "UP" : "DOWN"},
                           {"weight", s.effective_weight},
                           {"admin_weight", s.admin_weight_set},
                           {"zone", s.instance.zone},
                           {"drained", s.drained},
                           {"last_heartbeat_ms", s.last_heartbeat_age_ms},
                           {"in_flight", s.load.in_flight},
                           {"calls_per_second", s.load.calls_per_second},
                           {"role", RoleName(s.role)},
                           {"group", s.group},
                           {"epoch", s.epoch},
                           {"replication_position", s.replication_position},
                           {"priority", s.priority}});
    }
    json groups = json::array();
    for (const thrift::GroupState& g : snap.groups) {
      json members = json::array();
      for (const thrift::InstanceState& s : snap.instances) {
        if (s.group != g.group) continue;
        members.push_back({{"address", Store::Address(s.instance.host, s.instance.port)},
                           {"role", RoleName(s.role)},
                           {"health", s.health == thrift::Health::UP ? "UP" : "DOWN"},
                           {"replication_position", s.replication_position}});
      }
      groups.push_back({{"group", g.group},
                        {"epoch", g.epoch},
                        {"master", g.master_address},
                        {"switchover_target", g.switchover_target},
                        {"commit_floor", g.commit_floor},
                        {"stalled", g.stalled},
                        {"members", std::move(members)}});
    }
    services.push_back({{"name", summary.service_name},
                        {"version", snap.version},
                        {"instances", std::move(instances)},
                        {"groups", std::move(groups)}});
  }
  const auto uptime =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - kStart);
  return {{"registry",
           {{"pid", static_cast<int64_t>(::getpid())},
            {"uptime_s", uptime.count()},
            {"instances_up", up},
            {"instances_down", down},
            {"watchers", store.watchers()},
            {"heartbeat_timeout_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                         store.options().heartbeat_timeout)
                                         .count()}}},
          {"services", std::move(services)}};
}

AdminPage RegistryStatusPage(const Store* store) {
  return [store](const AdminRequest& request) {
    AdminResponse r;
    if (request.Param("format") == "json") {
      r.content_type = "application/json";
      r.body = RegistryStatus(*store).dump(2) + "\n";
    } else {
      r.content_type = "text/html; charset=utf-8";
      r.body = kPage;
    }
    return r;
  };
}

}  // namespace fulcrum::registry
