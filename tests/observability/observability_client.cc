// fulcrum_observability_client: a client process for the observability tests. Calls echo
// through a channel in two phases, with its admin pages (and so /metrics) up all along.
//
//   fulcrum_observability_client --target=fulcrum://127.0.0.1:7000/echo --expect_endpoints=3
//       --phase1=2000 --phase2=2000 --admin_port=0
//   ADMIN 40125            <- admin pages' port
//   READY                  <- the channel sees --expect_endpoints endpoints
//   PHASE1 2000 0          <- calls made, calls that failed
//   ...SIGUSR1...
//   PHASE2 2000 0
//   ...SIGTERM or SIGINT: exits 0
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "fulcrum/admin.h"
#include "fulcrum/channel.h"
#include "fulcrum/discovery/fulcrum.h"
#include "support/echo_calls.h"

DEFINE_string(target, "", "resolver URI of the echo service");
DEFINE_int32(expect_endpoints, 1, "wait until the channel has this many endpoints");
DEFINE_int32(phase1, 1000, "calls in the first phase");
DEFINE_int32(phase2, 1000, "calls in the second phase (after SIGUSR1)");
DEFINE_int32(admin_port, 0, "admin pages' port (0: any free one)");

namespace {

int Phase(fulcrum::Channel& channel, int calls) {
  int errors = 0;
  for (int i = 0; i < calls; ++i) {
    try {
      fulcrum::testing::Echo(channel, "ping");
    } catch (const std::exception& e) {
      if (errors++ == 0) LOG(WARNING) << "call failed: " << e.what();
    }
  }
  return errors;
}

int WaitFor(const sigset_t& signals) {
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  return sig;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  CHECK(fulcrum::RegisterFulcrumDiscovery().ok());

  fulcrum::Status admin = fulcrum::Admin::Global().Start({.port = FLAGS_admin_port});
  if (!admin.ok()) {
    std::fprintf(stderr, "cannot serve admin pages: %s\n", admin.ToString().c_str());
    return 1;
  }
  std::printf("ADMIN %d\n", fulcrum::Admin::Global().port());
  std::fflush(stdout);

  fulcrum::ChannelOptions options;
  options.service_name = "echo";
  auto channel = fulcrum::Channel::Create(FLAGS_target, options);
  if (!channel.ok()) {
    std::fprintf(stderr, "cannot create the channel: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (static_cast<int>((*channel)->Endpoints().size()) < FLAGS_expect_endpoints) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "the channel never saw %d endpoints\n", FLAGS_expect_endpoints);
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("READY\n");
  std::fflush(stdout);

  std::printf("PHASE1 %d %d\n", FLAGS_phase1, Phase(**channel, FLAGS_phase1));
  std::fflush(stdout);
  if (WaitFor(signals) == SIGUSR1) {
    std::printf("PHASE2 %d %d\n", FLAGS_phase2, Phase(**channel, FLAGS_phase2));
    std::fflush(stdout);
    WaitFor(signals);
  }
  (*channel)->Shutdown();
  fulcrum::Admin::Global().Stop();
  return 0;
}
