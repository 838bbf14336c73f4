// ServiceServer: the base of every server fulcrum-gen writes (SServer): a fulcrum::Server that
// can also register itself (with fulcrum-registry or etcd), heartbeat, and drain. The generated
// code only picks the processor; everything else is here.
//
//   auto server = calc::fulcrum_gen::CalculatorServer::Serve(
//       handler, fulcrum::ServeOptions{.server = {.port = 0},
//                                      .registrar = "fulcrum://127.0.0.1:7000",
//                                      .instance = {.host = "127.0.0.1"}}).value();
//   ...on SIGTERM:
//   server->Drain();   // stop writes (master-slave), deregister, wait for quiet, stop
//
// Thread-safe as Server is: StartAndRegister once; Drain once, from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <thrift/TProcessor.h>

#include "fulcrum/registrar.h"
#include "fulcrum/role.h"
#include "fulcrum/server.h"
#include "fulcrum/server_registration.h"
#include "fulcrum/status.h"

namespace fulcrum {

struct ServeOptions {
  ServerOptions server;
  // A registrar URI ("fulcrum://host:port?token_file=F", "etcd://host:port"); empty: serve
  // without registering. The URI's scheme must have been registered
  // (fulcrum::RegisterFulcrumDiscovery()).
  std::string registrar;
  // How to register. Empty service: the IDL's service name; empty host: server.host; port 0:
  // the port the server bound. A master-slave service needs `group`.
  ServiceInstance instance;
  DrainOptions drain;
  // The process's admin pages (fulcrum/admin.h: /metrics, /status, /healthz, /readyz,
  // /flags): -1 off; 0 a port the OS picks; else that port. Started once per process: a
  // second server finds it running and leaves it.
  int admin_port = -1;
  std::string admin_host = "127.0.0.1";
};

class ServiceServer : public Server {
 public:
  // `role`: master-slave services' RoleState (the processor gates writes on it), else null.
  ServiceServer(std::shared_ptr<apache::thrift::TProcessor> processor, ServerOptions options,
                std::shared_ptr<RoleState> role = nullptr);
  ~ServiceServer() override;  // stops heartbeating (without deregistering), then stops the server

  // Starts serving (and the admin pages when options.admin_port >= 0), then registers as
  // `service_name` when options.registrar is set. A registration error stops the server again
  // and is returned; an admin listener that cannot start is logged, not an error.
  Status StartAndRegister(std::string_view service_name, const ServeOptions& options);

  // Registered: stops writes (master-slave), deregisters, waits for clients to stop sending,
  // then stops the server (ServerRegistration::Drain). Not registered: stops writes and the
  // server. Returns the deregistration's status; the server is stopped either way.
  Status Drain();

  // Null until registered.
  ServerRegistration* registration() const { return registration_.get(); }

 protected:
  // Null for stateless services.
  const std::shared_ptr<RoleState>& role_state() const { return role_; }

 private:
  const std::shared_ptr<RoleState> role_;
  std::unique_ptr<ServerRegistration> registration_;
};

}  // namespace fulcrum
