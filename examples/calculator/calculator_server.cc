// calculator_server: one replica of the calculator service.
//
//   calculator_server --port=0 --id=replica-1    # prints "LISTENING <port>" once serving
//   calculator_server --registrar='fulcrum://127.0.0.1:7000?token_file=tok'   # and registers
//   calculator_server --admin_port=0             # and "ADMIN <port>": its admin pages
//
// Stops gracefully on SIGTERM or SIGINT: when registered it deregisters first and waits until
// clients have stopped sending (--quiet_ms), then lets in-flight calls finish.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "calculator_fulcrum.h"
#include "calculator_handler.h"
#include "fulcrum/admin.h"
#include "fulcrum/command_line.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"

DEFINE_string(host, "127.0.0.1", "Address to listen on");
DEFINE_int32(port, 0, "Port to listen on; 0 lets the OS pick one (printed as LISTENING <port>)");
DEFINE_string(id, "calculator", "This replica's id, returned by whoami()");
DEFINE_string(protocol, "binary", "Wire protocol: binary or compact");
DEFINE_string(registrar, "",
              "Registrar URI to register through: fulcrum-registry (fulcrum://127.0.0.1:7000?"
              "token_file=F) or etcd (etcd://127.0.0.1:2379); empty: serve without registering");
DEFINE_string(advertise_host, "", "Host clients should call, as registered; empty: --host");
DEFINE_int32(weight, 1, "Registered weight (relative share of traffic)");
DEFINE_string(zone, "", "Registered zone");
DEFINE_int32(
    admin_port, -1,
    "Admin pages (/status, /metrics, /healthz, /readyz, /flags) on 127.0.0.1 at this port; "
    "0: any free port (printed as ADMIN <port>); -1: off");
DEFINE_int32(quiet_ms, 500,
             "Drain: clients are taken to have stopped once no call arrived for this long");

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: calculator_server [--port=N] [--registrar=URI] "
                            "[flags]\n  A Calculator replica.");
  google::InitGoogleLogging(argv[0]);
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    std::fprintf(stderr, "--port must be in [0, 65535]\n");
    return 2;
  }
  fulcrum::StatusOr<fulcrum::Protocol> protocol = fulcrum::ParseProtocol(FLAGS_protocol);
  if (!protocol.ok()) {
    std::fprintf(stderr, "%s\n", protocol.status().ToString().c_str());
    return 2;
  }

  // Block the stop signals before any server thread starts, so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  if (FLAGS_weight < 0) {
    std::fprintf(stderr, "--weight must be >= 0\n");
    return 2;
  }
  // Both discovery libraries, so --registrar may name either.
  for (const fulcrum::Status& s :
       {fulcrum::RegisterFulcrumDiscovery(), fulcrum::RegisterEtcdDiscovery()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      return 1;
    }
  }

  fulcrum::ServeOptions options;
  options.server.host = FLAGS_host;
  options.server.port = static_cast<uint16_t>(FLAGS_port);
  options.server.protocol = protocol.value();
  options.registrar = FLAGS_registrar;
  options.instance.host = FLAGS_advertise_host;
  options.instance.weight = static_cast<uint32_t>(FLAGS_weight);
  options.instance.zone = FLAGS_zone;
  options.instance.metadata["id"] = FLAGS_id;
  options.drain.quiet_period = std::chrono::milliseconds(FLAGS_quiet_ms);
  options.admin_port = FLAGS_admin_port;
  auto server = calc::fulcrum_gen::CalculatorServer::Serve(
      std::make_shared<calc::CalculatorHandler>(FLAGS_id), options);
  if (!server.ok()) {
    LOG(ERROR) << "cannot serve: " << server.status();
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.value()->port()));
  if (FLAGS_admin_port >= 0 && fulcrum::Admin::Global().port() != 0) {
    std::printf("ADMIN %d\n", fulcrum::Admin::Global().port());
  }
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop, &signal);
  LOG(INFO) << "signal " << signal << ": " << (FLAGS_registrar.empty() ? "stopping" : "draining");
  fulcrum::Status drained = server.value()->Drain();
  if (!drained.ok()) LOG(WARNING) << "deregistration: " << drained;
  return 0;
}
