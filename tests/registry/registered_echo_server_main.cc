// fulcrum_registered_echo_server: the Echo test service registered with a discovery service
// (fulcrum:// or etcd://) through fulcrum::ServerRegistration; SIGTERM drains it (deregister, wait
// for clients to stop sending, finish calls in flight, exit 0).
//
//   fulcrum_registered_echo_server --id=a --registrar='fulcrum://127.0.0.1:7000?token_file=tok'
//   fulcrum_registered_echo_server --id=b --registrar='etcd://127.0.0.1:2379?ttl_s=2'
//   LISTENING 40123
//   ADMIN 40124              <- with --admin_port: the admin pages' port (fulcrum/admin.h)
#include <signal.h>

#include <cstdio>
#include <future>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "fulcrum/admin.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"
#include "fulcrum/server.h"
#include "fulcrum/server_registration.h"
#include "support/echo_handler.h"

DEFINE_string(registrar, "",
              "registrar URI, e.g. fulcrum://127.0.0.1:7000?token_file=F or etcd://127.0.0.1:2379");
DEFINE_string(service, "echo", "service name to register under");
DEFINE_string(id, "", "server id returned by whoami()");
DEFINE_int32(weight, 1, "registered weight");
DEFINE_string(group, "",
              "master-slave group to register in (the registry elects a master; this "
              "test server applies no role)");
DEFINE_int32(quiet_ms, 300, "drain: no new call for this long means clients have stopped");
DEFINE_int32(admin_port, -1, "admin pages on this port (0: any free one, printed); -1: off");

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  CHECK(fulcrum::RegisterFulcrumDiscovery().ok());
  CHECK(fulcrum::RegisterEtcdDiscovery().ok());
  auto handler = std::make_shared<fulcrum::testing::EchoHandler>(FLAGS_id);
  fulcrum::ServerOptions options;
  fulcrum::Server server(std::make_shared<fulcrum::test::EchoProcessor>(handler), options);
  fulcrum::Status started = server.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "cannot start: %s\n", started.ToString().c_str());
    return 1;
  }
  fulcrum::ServiceInstance instance;
  instance.service = FLAGS_service;
  instance.host = "127.0.0.1";
  instance.weight = static_cast<uint32_t>(FLAGS_weight);
  instance.metadata["id"] = FLAGS_id;
  instance.group = FLAGS_group;
  fulcrum::DrainOptions drain;
  drain.quiet_period = std::chrono::milliseconds(FLAGS_quiet_ms);
  drain.max_wait = std::chrono::seconds(20);
  auto registration = fulcrum::ServerRegistration::Start(&server, FLAGS_registrar, instance, drain);
  if (!registration.ok()) {
    std::fprintf(stderr, "cannot register: %s\n", registration.status().ToString().c_str());
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.port()));
  if (FLAGS_admin_port >= 0) {
    fulcrum::Status admin = fulcrum::Admin::Global().Start({.port = FLAGS_admin_port});
    if (!admin.ok()) {
      std::fprintf(stderr, "cannot serve admin pages: %s\n", admin.ToString().c_str());
      return 1;
    }
    std::printf("ADMIN %d\n", fulcrum::Admin::Global().port());
  }
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  LOG(INFO) << FLAGS_id << ": signal " << sig << ", draining";
  fulcrum::Status s = (*registration)->Drain();
  LOG(INFO) << FLAGS_id << ": drained (" << s << "), served " << handler->calls() << " call(s)";
  fulcrum::Admin::Global().Stop();
  return 0;
}
