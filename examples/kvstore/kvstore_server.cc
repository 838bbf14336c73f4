// kvstore_server: one replica of the replicated key-value store. The registry makes it the
// master of its group or a slave; a slave pulls the master's log; the master acknowledges a
// write once --min_insync_replicas slaves have it.
//
//   kvstore_server --registry=127.0.0.1:7000 --token_file=tok --group=g1 --port=0
//   LISTENING 40123
//
// SIGTERM/SIGINT: stop admitting writes, deregister, finish calls in flight, exit 0.
#include <signal.h>

#include <cstdio>
#include <memory>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "control_plane.h"
#include "follower.h"
#include "fulcrum/command_line.h"
#include "fulcrum/role.h"
#include "kvstore_fulcrum.h"
#include "kvstore_handler.h"
#include "replica.h"

DEFINE_string(registry, "",
              "control plane: fulcrum-registry (host:port or fulcrum://host:port) or etcd "
              "(etcd://h1:p1,h2:p2[?ttl_s=2])");
DEFINE_string(token_file, "", "file holding the registry's bearer token");
DEFINE_string(host, "127.0.0.1", "address to listen on and to register");
DEFINE_int32(port, 0, "port to listen on; 0 lets the OS pick (printed as LISTENING <port>)");
DEFINE_string(service, "KvStore", "service name to register under");
DEFINE_string(group, "g1", "master-slave group (one master per group)");
DEFINE_int32(priority, 0, "promotion tie-breaker among equally up-to-date slaves (higher wins)");
DEFINE_int32(min_insync_replicas, 1,
             "slaves that must have a write before the master acknowledges it; with fewer in "
             "sync, writes are refused");
DEFINE_int32(replication_timeout_ms, 1000, "how long a write waits for its slaves");
DEFINE_int32(insync_window_ms, 1000, "a slave caught up within this long is in sync");
DEFINE_int32(log_retention, 100000, "log entries kept for slaves (older: snapshot)");
DEFINE_int32(fetch_wait_ms, 500, "slaves' long poll on the master");
DEFINE_int32(drain_quiet_ms, 300, "drain: no new call for this long means clients have stopped");
DEFINE_int32(admin_port, -1,
             "admin pages (/status with role, epoch and lease; /metrics; /readyz) on 127.0.0.1 at "
             "this port; 0: any free port (logged); -1: off");

namespace {

bool Valid() {
  if (FLAGS_registry.empty()) {
    std::fprintf(stderr, "--registry is required\n");
    return false;
  }
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    std::fprintf(stderr, "--port must be in [0, 65535]\n");
    return false;
  }
  if (FLAGS_group.empty()) {
    std::fprintf(stderr, "--group must not be empty\n");
    return false;
  }
  if (FLAGS_min_insync_replicas < 0 || FLAGS_replication_timeout_ms <= 0 ||
      FLAGS_insync_window_ms <= 0 || FLAGS_log_retention <= 0 || FLAGS_fetch_wait_ms < 0 ||
      FLAGS_drain_quiet_ms < 0) {
    std::fprintf(stderr,
                 "--min_insync_replicas, --fetch_wait_ms and --drain_quiet_ms must be >= 0, the "
                 "other durations and --log_retention > 0\n");
    return false;
  }
  return true;
}

std::string RegistryUri() {
  std::string uri = kvstore::RegistryUri(FLAGS_registry);
  if (!FLAGS_token_file.empty()) {
    uri += (uri.find('?') == std::string::npos ? "?" : "&");
    uri += "token_file=" + FLAGS_token_file;
  }
  return uri;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(
      &argc, &argv,
      "usage: kvstore_server --registry=HOST:PORT|etcd://H:P [--token_file=F] [--port=N] "
      "[--group=G] [flags]\n  "
      "A replica of the master-slave key-value store example.");
  google::InitGoogleLogging(argv[0]);
  if (!Valid()) return 2;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  CHECK(kvstore::RegisterDiscovery().ok());

  // The registry's heartbeat replies drive `role` (through the generated server's
  // registration); the generated processor admits writes only on a writable master.
  auto role = std::make_shared<fulcrum::RoleState>();
  kvstore::ReplicaOptions ro;
  ro.min_insync_replicas = FLAGS_min_insync_replicas;
  ro.replication_timeout = std::chrono::milliseconds(FLAGS_replication_timeout_ms);
  ro.insync_window = std::chrono::milliseconds(FLAGS_insync_window_ms);
  ro.log_retention = static_cast<size_t>(FLAGS_log_retention);
  ro.writes_admitted_by_caller = true;
  kvstore::Replica replica(*role, ro);

  fulcrum::ServeOptions options;
  options.server.host = FLAGS_host;
  options.server.port = static_cast<uint16_t>(FLAGS_port);
  options.registrar = RegistryUri();
  options.instance.service = FLAGS_service;
  options.instance.group = FLAGS_group;
  options.instance.priority = FLAGS_priority;
  options.drain.quiet_period = std::chrono::milliseconds(FLAGS_drain_quiet_ms);
  options.drain.max_wait = std::chrono::seconds(10);
  options.admin_port = FLAGS_admin_port;
  kvstore::rpc::fulcrum_gen::KvStoreServer server(
      std::make_shared<kvstore::KvStoreHandler>(replica), options.server, role);
  fulcrum::Status started = server.StartAndRegister(FLAGS_service, options);
  if (!started.ok()) {
    LOG(ERROR) << "cannot serve: " << started;
    return 1;
  }
  const std::string self = FLAGS_host + ":" + std::to_string(server.port());
  replica.SetSelf(self);  // fetches say who is asking (until now they are refused)

  kvstore::FetchClient fetch_client;
  kvstore::FollowerOptions fo;
  fo.max_wait = std::chrono::milliseconds(FLAGS_fetch_wait_ms);
  kvstore::Follower follower(
      replica, *role,
      [&](const std::string& master, const kvstore::FetchRequest& r) {
        return fetch_client.Fetch(master, r);
      },
      fo);
  follower.Start();
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);
  LOG(INFO) << self << ": serving group " << FLAGS_group << ", min_insync_replicas "
            << FLAGS_min_insync_replicas;

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  LOG(INFO) << "signal " << sig << ": stopping writes, deregistering, draining";
  fulcrum::Status drained = server.Drain();
  if (!drained.ok()) LOG(WARNING) << "drain: " << drained;
  follower.Stop();
  replica.Shutdown();
  return 0;
}
