#include "metrics/client_metrics.h"

#include "fulcrum/channel.h"
#include "metrics/live_set.h"

namespace fulcrum::internal {

namespace {

// Per-endpoint series stop here: a channel over thousands of endpoints still exports its
// per-service figures, but not a series per endpoint.
constexpr size_t kMaxEndpointSeries = 256;

}  // namespace

const char* ClientMethodStats::Name(AttemptFailure kind) {
  switch (kind) {
    case kConnect:
      return "connect";
    case kTransport:
      return "transport";
    case kTimeout:
      return "timeout";
    case kProtocol:
      return "protocol";
    case kApplication:
      return "application";
    case kNotMaster:
      return "not_master";
    case kLocal:
      return "local";
    default:
      return "unknown";
  }
}

const char* ClientMethodStats::Name(CallError kind) {
  switch (kind) {
    case kErrTimeout:
      return "timeout";
    case kErrUnavailable:
      return "unavailable";
    case kErrRetryBudget:
      return "retry_budget";
    case kErrApplication:
      return "application";
    case kErrDeclared:
      return "declared";
    case kErrNested:
      return "nested";
    case kErrOther:
      return "other";
    default:
      return "unknown";
  }
}

uint64_t ClientMethodStats::errors() const {
  uint64_t n = 0;
  for (size_t k = 0; k < kNumCallErrors; ++k) n += call_errors(static_cast<CallError>(k));
  return n;
}

ChannelMetrics::ChannelMetrics(const Channel& channel, std::string service, std::string balancer)
    : channel_(channel), service_(std::move(service)), balancer_(std::move(balancer)) {}

ChannelMetrics::~ChannelMetrics() {
  if (attached_) LiveChannels().Remove(this);
}

void ChannelMetrics::Attach() {
  if (attached_) return;
  attached_ = true;
  LiveChannels().Add(this);
}

void ChannelMetrics::OnResolverUpdate(TimePoint now) {
  resolver_updates_.fetch_add(1, std::memory_order_relaxed);
  last_update_ns_.store(ToNanos(now), std::memory_order_relaxed);
}

double ChannelMetrics::EndpointSetAgeSeconds() const {
  const int64_t last = last_update_ns_.load(std::memory_order_relaxed);
  if (last == INT64_MIN) return -1;
  const int64_t now = ToNanos(channel_.options().clock->Now());
  return static_cast<double>(now - last) / 1e9;
}

void CollectClientMetrics(FamilySet& out) {
  LiveChannels().ForEach([&out](const ChannelMetrics& m) {
    const Labels service = {{"service", m.service()}};
    const Channel& channel = m.channel();
    m.methods().ForEach([&](std::string_view method, const ClientMethodStats& s) {
      Labels labels = service;
      labels.emplace_back("method", std::string(method));
      out.Counter("fulcrum_client_calls_total", "Calls made (each counted once, at its end)",
                  labels, static_cast<double>(s.calls()));
      out.Counter("fulcrum_client_attempts_total", "Attempts on an endpoint, retries included",
                  labels, static_cast<double>(s.attempts()));
      out.Counter("fulcrum_client_retries_total", "Attempts after a call's first, hedges included",
                  labels, static_cast<double>(s.retries()));
      out.Counter("fulcrum_client_hedges_total",
                  "Hedges: second attempts started while the first was unanswered", labels,
                  static_cast<double>(s.hedges()));
      out.Counter("fulcrum_client_hedges_won_total",
                  "Hedges that answered before the first attempt", labels,
                  static_cast<double>(s.hedges_won()));
      out.Histogram("fulcrum_client_call_duration_seconds",
                    "Call latency as the caller saw it, retries included", labels, s.latency());
      for (size_t k = 0; k < ClientMethodStats::kNumCallErrors; ++k) {
        const auto kind = static_cast<ClientMethodStats::CallError>(k);
        Labels l = labels;
        l.emplace_back("kind", ClientMethodStats::Name(kind));
        out.Counter("fulcrum_client_call_errors_total",
                    "Calls that ended with an error for the caller, by kind", l,
                    static_cast<double>(s.call_errors(kind)));
      }
      for (size_t k = 0; k < ClientMethodStats::kNumAttemptFailures; ++k) {
        const auto kind = static_cast<ClientMethodStats::AttemptFailure>(k);
        Labels l = labels;
        l.emplace_back("kind", ClientMethodStats::Name(kind));
        out.Counter("fulcrum_client_attempt_failures_total", "Failed attempts, by kind", l,
                    static_cast<double>(s.attempt_failures(kind)));
      }
    });

    out.Gauge("fulcrum_client_channels", "Channels open to the service", service, 1);
    out.Counter("fulcrum_client_ejections_total", "Endpoints ejected by outlier detection", service,
                static_cast<double>(m.ejections()));
    out.Counter("fulcrum_client_retry_budget_exhausted_total",
                "Retries refused by the retry budget", service,
                static_cast<double>(channel.budget_exhausted()));
    out.Counter("fulcrum_client_redirects_total", "NotMaster redirects followed (master-slave)",
                service, static_cast<double>(channel.redirects()));
    out.Counter("fulcrum_client_master_waits_total",
                "Times a call waited for a (newer) master (master-slave)", service,
                static_cast<double>(channel.master_waits()));
    out.Counter("fulcrum_client_resolver_updates_total", "Endpoint sets delivered by discovery",
                service, static_cast<double>(m.resolver_updates()));
    out.Counter("fulcrum_client_resolver_errors_total", "Errors reported by discovery", service,
                static_cast<double>(m.resolver_errors()));
    const double age = m.EndpointSetAgeSeconds();
    if (age >= 0) {
      out.GaugeMax("fulcrum_client_endpoint_set_age_seconds",
                   "Seconds since discovery last delivered an endpoint set", service, age);
    }
    out.Gauge("fulcrum_client_panic_mode",
              "1 while too few endpoints are healthy and the channel balances over all of them",
              service, channel.panic() ? 1 : 0);

    const std::vector<EndpointReport> endpoints = channel.Endpoints();
    int serving = 0, ejected = 0, in_flight = 0, open = 0, idle = 0;
    for (size_t i = 0; i < endpoints.size(); ++i) {
      const EndpointReport& e = endpoints[i];
      (e.ejected ? ejected : serving) += 1;
      in_flight += e.in_flight;
      open += e.open_connections;
      idle += e.idle_connections;
      if (i >= kMaxEndpointSeries) continue;
      Labels l = service;
      l.emplace_back("endpoint", e.address);
      out.Counter("fulcrum_client_endpoint_calls_total", "Attempts finished on the endpoint", l,
                  static_cast<double>(e.calls));
      out.Counter("fulcrum_client_endpoint_failures_total",
                  "Failed attempts on the endpoint (transport, timeout, framework errors)", l,
                  static_cast<double>(e.failures));
      out.Gauge("fulcrum_client_endpoint_in_flight", "Attempts in flight on the endpoint", l,
                e.in_flight);
      out.Gauge("fulcrum_client_endpoint_ejected", "1 while outlier detection ejects the endpoint",
                l, e.ejected ? 1 : 0);
      out.Gauge("fulcrum_client_endpoint_latency_ewma_seconds",
                "Moving average of the endpoint's successful attempts' latency", l,
                e.ewma_ms / 1e3);
      Labels lo = l, li = l;
      lo.emplace_back("state", "open");
      li.emplace_back("state", "idle");
      out.Gauge("fulcrum_client_endpoint_connections", "Pooled connections to the endpoint", lo,
                e.open_connections);
      out.Gauge("fulcrum_client_endpoint_connections", "Pooled connections to the endpoint", li,
                e.idle_connections);
    }
    Labels ls = service, le = service, lo = service, li = service;
    ls.emplace_back("state", "serving");
    le.emplace_back("state", "ejected");
    out.Gauge("fulcrum_client_endpoints", "Endpoints in the current set, by state", ls, serving);
    out.Gauge("fulcrum_client_endpoints", "Endpoints in the current set, by state", le, ejected);
    out.Gauge("fulcrum_client_in_flight", "Attempts in flight", service, in_flight);
    lo.emplace_back("state", "open");
    li.emplace_back("state", "idle");
    out.Gauge("fulcrum_client_connections", "Pooled connections (open includes idle)", lo, open);
    out.Gauge("fulcrum_client_connections", "Pooled connections (open includes idle)", li, idle);
  });
}

}  // namespace fulcrum::internal
