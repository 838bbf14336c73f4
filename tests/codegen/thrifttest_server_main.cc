// codegen_thrifttest_server: a Fulcrum server for ThriftTest (generated server glue), for the
// test in which a stock Thrift client calls it.
//
//   codegen_thrifttest_server --port=0     # prints "LISTENING <port>"; SIGTERM stops it
#include <csignal>
#include <cstdio>
#include <memory>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "ThriftTest_fulcrum.h"
#include "thrifttest_handler.h"

DEFINE_int32(port, 0, "Port to listen on; 0 lets the OS pick one");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  fulcrum::ServerOptions options;
  options.port = static_cast<uint16_t>(FLAGS_port);
  auto server = thrift::test::fulcrum_gen::ThriftTestServer::Serve(
      std::make_shared<fulcrum::testing::ThriftTestHandler>(), options);
  if (!server.ok()) {
    LOG(ERROR) << server.status();
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.value()->port()));
  std::fflush(stdout);
  int signal = 0;
  sigwait(&stop, &signal);
  server.value()->Stop();
  return 0;
}
