#include "fulcrum/server_registration.h"

#include <glog/logging.h>

#include <thread>

#include "metrics/live_set.h"
#include "metrics/server_metrics.h"

namespace fulcrum {

ServerRegistration::ServerRegistration(Server* server, std::unique_ptr<Registrar> registrar,
                                       std::shared_ptr<RoleState> role, DrainOptions drain,
                                       const Clock& clock)
    : server_(server),
      registrar_(std::move(registrar)),
      role_(std::move(role)),
      drain_(drain),
      clock_(clock),
      last_calls_(server->calls()),
      last_time_(clock.Now()) {}

ServerRegistration::~ServerRegistration() {
  if (metrics_) internal::LiveRegistrations().Remove(metrics_.get());
}

StatusOr<std::unique_ptr<ServerRegistration>> ServerRegistration::Start(
    Server* server, std::string_view registrar_uri, ServiceInstance instance, DrainOptions drain,
    const Clock& clock) {
  return Start(server, registrar_uri, std::move(instance), nullptr, drain, clock);
}

StatusOr<std::unique_ptr<ServerRegistration>> ServerRegistration::Start(
    Server* server, std::unique_ptr<Registrar> registrar, ServiceInstance instance,
    DrainOptions drain, const Clock& clock) {
  return Start(server, std::move(registrar), std::move(instance), nullptr, drain, clock);
}

StatusOr<std::unique_ptr<ServerRegistration>> ServerRegistration::Start(
    Server* server, std::string_view registrar_uri, ServiceInstance instance,
    std::shared_ptr<RoleState> role, DrainOptions drain, const Clock& clock) {
  StatusOr<std::unique_ptr<Registrar>> registrar = CreateRegistrar(registrar_uri);
  if (!registrar.ok()) return registrar.status();
  return Start(server, std::move(registrar).value(), std::move(instance), std::move(role), drain,
               clock);
}

StatusOr<std::unique_ptr<ServerRegistration>> ServerRegistration::Start(
    Server* server, std::unique_ptr<Registrar> registrar, ServiceInstance instance,
    std::shared_ptr<RoleState> role, DrainOptions drain, const Clock& clock) {
  if (server == nullptr || server->port() == 0) {
    return Status::Error(StatusCode::kInvalidArgument, "ServerRegistration needs a started server");
  }
  if (registrar == nullptr) {
    return Status::Error(StatusCode::kInvalidArgument, "ServerRegistration needs a registrar");
  }
  if (instance.port == 0) instance.port = server->port();
  std::unique_ptr<ServerRegistration> r(
      new ServerRegistration(server, std::move(registrar), std::move(role), drain, clock));
  RegistrationOptions options;
  ServerRegistration* self = r.get();
  options.load = [self] { return self->Load(); };
  options.on_directives = [self](const RegistrarDirectives& d) {
    if (self->drained_by_admin_.exchange(d.drained) != d.drained) {
      LOG(INFO) << (d.drained ? "an administrator drained this instance"
                              : "an administrator undrained this instance");
    }
    if (self->role_ != nullptr) self->role_->Apply(d);
  };
  auto metrics = std::make_unique<internal::RegistrationMetrics>();
  metrics->service = instance.service;
  metrics->address = instance.host + ":" + std::to_string(instance.port);
  metrics->group = instance.group;
  metrics->registrar = r->registrar_.get();
  metrics->role = r->role_;
  Status s = r->registrar_->Register(instance, std::move(options));
  if (!s.ok()) return s;
  r->metrics_ = std::move(metrics);
  internal::LiveRegistrations().Add(r->metrics_.get());
  return r;
}

LoadReport ServerRegistration::Load() {
  LoadReport report;
  report.in_flight = server_->in_flight();
  const uint64_t calls = server_->calls();
  const TimePoint now = clock_.Now();
  const double seconds = std::chrono::duration<double>(now - last_time_).count();
  if (seconds > 0) report.calls_per_second = static_cast<double>(calls - last_calls_) / seconds;
  last_calls_ = calls;
  last_time_ = now;
  if (role_ != nullptr) {
    // Quiesced first: once it is true no write can start, so the position read after it is
    // final. The other order could report a position a still-running write then moves past.
    report.writes_quiesced = role_->writes_quiesced();
    report.replication_position = role_->replication_position();
    if (role_->info().role == InstanceRole::kMaster)
      report.commit_position = role_->commit_position();
  }
  return report;
}

Status ServerRegistration::Drain() {
  // A master stops writes first: once deregistered, the registry may promote a slave (after
  // the promotion delay), and this instance must not be writing by then.
  if (role_ != nullptr) role_->StopWrites();
  if (metrics_) metrics_->draining = true;  // /readyz says no from here on
  // Deregister first, so clients stop choosing this server while it still answers.
  Status deregistered = registrar_->Deregister();
  const TimePoint start = clock_.Now();
  uint64_t calls = server_->calls();
  TimePoint last_change = start;
  while (true) {
    const TimePoint now = clock_.Now();
    if (now - last_change >= drain_.quiet_period) break;
    if (now - start >= drain_.max_wait) {
      LOG(WARNING) << "clients still sending after "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(drain_.max_wait).count()
                   << " ms; stopping anyway";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const uint64_t c = server_->calls();
    if (c != calls) {
      calls = c;
      last_change = clock_.Now();
    }
  }
  LOG(INFO) << "no new calls for "
            << std::chrono::duration_cast<std::chrono::milliseconds>(drain_.quiet_period).count()
            << " ms; finishing " << server_->in_flight() << " call(s) in flight and stopping";
  server_->Stop();
  return deregistered;
}

}  // namespace fulcrum
