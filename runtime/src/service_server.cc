#include "fulcrum/service_server.h"

#include <glog/logging.h>

#include "fulcrum/admin.h"

namespace fulcrum {

ServiceServer::ServiceServer(std::shared_ptr<apache::thrift::TProcessor> processor,
                             ServerOptions options, std::shared_ptr<RoleState> role)
    : Server(std::move(processor), std::move(options)), role_(std::move(role)) {}

ServiceServer::~ServiceServer() {
  registration_.reset();  // its heartbeat thread reads this server: stop it first
  Stop();
}

Status ServiceServer::StartAndRegister(std::string_view service_name, const ServeOptions& options) {
  ServiceInstance instance = options.instance;
  if (!options.registrar.empty()) {
    if (instance.service.empty()) instance.service = std::string(service_name);
    if (instance.host.empty()) instance.host = options.server.host;
    // Checked before serving: a master-slave instance without a group would be registered as
    // stateless, never be told its role, and refuse every write.
    if (role_ != nullptr && instance.group.empty()) {
      return Status::Error(StatusCode::kInvalidArgument,
                           "service " + instance.service +
                               " is master-slave: ServeOptions.instance.group must name its group");
    }
  }
  Status started = Start();
  if (!started.ok()) return started;
  if (options.admin_port >= 0 && Admin::Global().port() == 0) {
    AdminOptions admin;
    admin.host = options.admin_host;
    admin.port = options.admin_port;
    if (Status s = Admin::Global().Start(admin); !s.ok()) {
      LOG(ERROR) << "admin pages not started: " << s;
    }
  }
  if (options.registrar.empty()) return Status::Ok();
  StatusOr<std::unique_ptr<ServerRegistration>> registration =
      ServerRegistration::Start(this, options.registrar, std::move(instance), role_, options.drain);
  if (!registration.ok()) {
    Stop();
    return registration.status();
  }
  registration_ = std::move(registration).value();
  return Status::Ok();
}

Status ServiceServer::Drain() {
  if (registration_ != nullptr) return registration_->Drain();
  if (role_ != nullptr) role_->StopWrites();
  Stop();
  return Status::Ok();
}

}  // namespace fulcrum
