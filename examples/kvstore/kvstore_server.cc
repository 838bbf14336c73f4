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

#include "client/backend.h"
#include "follower.h"
#include "fulcrum/registrar.h"
#include "fulcrum/role.h"
#include "kvstore_fulcrum.h"
#include "kvstore_handler.h"
#include "replica.h"

DEFINE_string(registry, "", "fulcrum-registry address (host:port or fulcrum://host:port)");
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
      FLAGS_insync_window_ms <= 0 || FLAGS_log_retention <= 0 || FLAGS_fetch_wait_ms < 0) {
    std::fprintf(stderr,
                 "--min_insync_replicas must be >= 0, --fetch_wait_ms >= 0, and the other "
                 "durations and --log_retention > 0\n");
    return false;
  }
  return true;
}

std::string RegistryUri() {
  std::string uri = FLAGS_registry;
  if (uri.find("://") == std::string::npos) uri = "fulcrum://" + uri;
  if (!FLAGS_token_file.empty()) {
    uri += (uri.find('?') == std::string::npos ? "?" : "&");
    uri += "token_file=" + FLAGS_token_file;
  }
  return uri;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  if (!Valid()) return 2;
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  signal(SIGPIPE, SIG_IGN);
  CHECK(fulcrum::registry::RegisterFulcrumBackend().ok());

  fulcrum::RoleState role;
  kvstore::ReplicaOptions ro;
  ro.min_insync_replicas = FLAGS_min_insync_replicas;
  ro.replication_timeout = std::chrono::milliseconds(FLAGS_replication_timeout_ms);
  ro.insync_window = std::chrono::milliseconds(FLAGS_insync_window_ms);
  ro.log_retention = static_cast<size_t>(FLAGS_log_retention);
  kvstore::Replica replica(role, ro);

  fulcrum::ServerOptions options;
  options.host = FLAGS_host;
  options.port = static_cast<uint16_t>(FLAGS_port);
  auto server = kvstore::rpc::fulcrum_gen::KvStoreServer::Serve(
      std::make_shared<kvstore::KvStoreHandler>(replica), options);
  if (!server.ok()) {
    LOG(ERROR) << "cannot serve: " << server.status();
    return 1;
  }
  const std::string self = FLAGS_host + ":" + std::to_string(server.value()->port());
  replica.SetSelf(self);

  kvstore::FetchClient fetch_client;
  kvstore::FollowerOptions fo;
  fo.max_wait = std::chrono::milliseconds(FLAGS_fetch_wait_ms);
  kvstore::Follower follower(
      replica, role,
      [&](const std::string& master, const kvstore::FetchRequest& r) {
        return fetch_client.Fetch(master, r);
      },
      fo);
  follower.Start();

  // Registration: the registry's replies drive the RoleState; each heartbeat reports the
  // replication position and whether a master asked to stop writes has quiesced.
  auto registrar = fulcrum::CreateRegistrar(RegistryUri());
  if (!registrar.ok()) {
    LOG(ERROR) << "bad --registry: " << registrar.status();
    return 2;
  }
  fulcrum::ServiceInstance instance;
  instance.service = FLAGS_service;
  instance.host = FLAGS_host;
  instance.port = server.value()->port();
  instance.group = FLAGS_group;
  instance.priority = FLAGS_priority;
  fulcrum::RegistrationOptions reg;
  reg.load = [&] {
    fulcrum::LoadReport load;
    load.in_flight = server.value()->in_flight();
    // Quiesced first, then the position: a position read after the last write finished is
    // final (a write admitted later would have been refused).
    load.writes_quiesced = role.writes_quiesced();
    load.replication_position = role.replication_position();
    return load;
  };
  reg.on_directives = [&](const fulcrum::RegistrarDirectives& d) { role.Apply(d); };
  fulcrum::Status registered = (*registrar)->Register(instance, std::move(reg));
  if (!registered.ok()) {
    LOG(ERROR) << "cannot register: " << registered;
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.value()->port()));
  std::fflush(stdout);
  LOG(INFO) << self << ": serving group " << FLAGS_group << ", min_insync_replicas "
            << FLAGS_min_insync_replicas;

  int sig = 0;
  while (sigwait(&stop, &sig) != 0) {
  }
  LOG(INFO) << "signal " << sig << ": stopping writes, deregistering";
  role.StopWrites();
  fulcrum::Status s = (*registrar)->Deregister();
  if (!s.ok()) LOG(WARNING) << "deregister: " << s;
  follower.Stop();
  replica.Shutdown();
  server.value()->Stop();
  return 0;
}
