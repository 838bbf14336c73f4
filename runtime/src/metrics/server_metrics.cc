#include "metrics/server_metrics.h"

#include <chrono>

#include "fulcrum/registrar.h"
#include "fulcrum/role.h"
#include "fulcrum/server.h"
#include "metrics/live_set.h"

namespace fulcrum::internal {

namespace {

thread_local int64_t t_call_start_ns = 0;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// "Service.method" (what Thrift's processors name a call) -> service, method.
std::pair<std::string, std::string> SplitFunction(std::string_view fn) {
  const size_t dot = fn.find('.');
  if (dot == std::string_view::npos) return {"", std::string(fn)};
  return {std::string(fn.substr(0, dot)), std::string(fn.substr(dot + 1))};
}

}  // namespace

void ServerMetrics::Attach(std::string address) {
  if (attached_.exchange(true)) return;
  address_ = std::move(address);
  LiveServers().Add(this);
}

void ServerMetrics::Detach() {
  if (attached_.exchange(false)) LiveServers().Remove(this);
}

void* ServerMetrics::getContext(const char* fn_name, void*) {
  t_call_start_ns = NowNs();
  return &methods_.Find(fn_name);
}

void ServerMetrics::freeContext(void* ctx, const char*) {
  if (ctx != nullptr) static_cast<ServerMethodStats*>(ctx)->OnCall(NowNs() - t_call_start_ns);
}

void ServerMetrics::handlerError(void* ctx, const char*) {
  if (ctx != nullptr) static_cast<ServerMethodStats*>(ctx)->OnFailure();
}

void CollectServerMetrics(FamilySet& out) {
  LiveServers().ForEach([&out](const ServerMetrics& m) {
    m.methods().ForEach([&](std::string_view fn, const ServerMethodStats& s) {
      auto [service, method] = SplitFunction(fn);
      const Labels labels = {{"service", service}, {"method", method}};
      out.Counter("fulcrum_server_calls_total", "Calls served, by method", labels,
                  static_cast<double>(s.calls()));
      out.Counter("fulcrum_server_failures_total",
                  "Calls whose handler threw an exception not declared in the IDL", labels,
                  static_cast<double>(s.failures()));
      out.Histogram("fulcrum_server_call_duration_seconds",
                    "Time from reading a call to writing its reply", labels, s.latency());
    });
    const Server& server = m.server();
    const Labels labels = {{"server", m.address()}};
    out.Counter("fulcrum_server_requests_total",
                "Requests read, every method (unknown and refused ones included)", labels,
                static_cast<double>(server.calls()));
    out.Gauge("fulcrum_server_in_flight", "Calls being served", labels,
              static_cast<double>(server.in_flight()));
    out.Gauge("fulcrum_server_connections", "Open client connections", labels,
              server.connections());
    out.Gauge("fulcrum_server_serving", "1 while the server accepts calls (0 once it stops)",
              labels, server.serving() ? 1 : 0);
  });
  LiveRegistrations().ForEach([&out](const RegistrationMetrics& r) {
    Labels labels = {{"service", r.service}, {"instance", r.address}};
    out.Gauge("fulcrum_server_registered",
              "1 while the discovery service holds this instance's registration", labels,
              r.registrar != nullptr && r.registrar->registered() ? 1 : 0);
    out.Gauge("fulcrum_server_draining", "1 once the instance is draining (deregistered)", labels,
              r.draining.load() ? 1 : 0);
    if (r.role == nullptr) return;
    labels.emplace_back("group", r.group);
    const RoleInfo info = r.role->info();
    out.Gauge("fulcrum_server_master", "1 while the registry says this instance is master", labels,
              info.role == InstanceRole::kMaster ? 1 : 0);
    out.Gauge("fulcrum_server_epoch", "The group's epoch as this instance knows it", labels,
              static_cast<double>(info.epoch));
    out.Gauge("fulcrum_server_lease_remaining_seconds",
              "How long this master may still admit writes without a new heartbeat reply", labels,
              std::chrono::duration<double>(r.role->LeaseRemaining()).count());
    out.Counter("fulcrum_server_writes_refused_total",
                "Writes refused with a NotMaster redirect by the master-slave write gate", labels,
                static_cast<double>(r.role->writes_refused()));
  });
}

bool ProcessReady(std::string* why) {
  bool ready = true;
  LiveServers().ForEach([&](const ServerMetrics& m) {
    if (ready && !m.server().serving()) {
      ready = false;
      if (why) *why = "server " + m.address() + " is not serving";
    }
  });
  LiveRegistrations().ForEach([&](const RegistrationMetrics& r) {
    if (!ready) return;
    if (r.draining.load()) {
      ready = false;
      if (why) *why = r.service + " " + r.address + " is draining";
    } else if (r.registrar == nullptr || !r.registrar->registered()) {
      ready = false;
      if (why) *why = r.service + " " + r.address + " is not registered";
    }
  });
  return ready;
}

}  // namespace fulcrum::internal
