// calculator_server: one replica of the calculator service.
//
//   calculator_server --port=0 --id=replica-1    # prints "LISTENING <port>" once serving
//
// Stops gracefully (in-flight calls finish) on SIGTERM or SIGINT.
#include <csignal>
#include <cstdio>
#include <memory>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "calculator_fulcrum.h"
#include "calculator_handler.h"

DEFINE_string(host, "127.0.0.1", "Address to listen on");
DEFINE_int32(port, 0, "Port to listen on; 0 lets the OS pick one (printed as LISTENING <port>)");
DEFINE_string(id, "calculator", "This replica's id, returned by whoami()");
DEFINE_string(protocol, "binary", "Wire protocol: binary or compact");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
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

  fulcrum::ServerOptions options;
  options.host = FLAGS_host;
  options.port = static_cast<uint16_t>(FLAGS_port);
  options.protocol = protocol.value();
  auto server = calc::fulcrum_gen::CalculatorServer::Serve(
      std::make_shared<calc::CalculatorHandler>(FLAGS_id), options);
  if (!server.ok()) {
    LOG(ERROR) << "cannot serve: " << server.status();
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.value()->port()));
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop, &signal);
  LOG(INFO) << "signal " << signal << ": stopping";
  server.value()->Stop();
  return 0;
}
