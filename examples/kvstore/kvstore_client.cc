// kvstore_client: a small CLI for the kvstore through the registry (writes go to the master).
//
//   kvstore_client --registry=127.0.0.1:7000 put k v
//   kvstore_client --registry=127.0.0.1:7000 get k
//   kvstore_client --registry=127.0.0.1:7000 remove k
//   kvstore_client --registry=127.0.0.1:7000 cas k old new      (--expect_absent: k unset)
//   kvstore_client --address=127.0.0.1:40123 status             (one replica, directly)
//
// Exit codes: 0 done (get: found), 1 the store refused or failed (message on stderr),
// 2 bad usage, 3 get: not found / cas: no match.
#include <cstdio>
#include <string>
#include <vector>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "control_plane.h"
#include "fulcrum/command_line.h"
#include "kvstore_fulcrum.h"

DEFINE_string(registry, "",
              "control plane: fulcrum-registry (host:port) or etcd (etcd://h1:p1,h2:p2)");
DEFINE_string(service, "KvStore", "service name");
DEFINE_string(address, "", "call this replica directly (host:port) instead of the master");
DEFINE_bool(expect_absent, false, "cas: succeed only if the key has no value");
DEFINE_int32(timeout_ms, 3000, "per-call deadline");

namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: kvstore_client (--registry=H:P | --address=H:P) "
               "get K | put K V | remove K | cas K EXPECTED V | status\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(
      &argc, &argv, "usage: kvstore_client --registry=HOST:PORT get|put|remove|cas|status ARGS...");
  google::InitGoogleLogging(argv[0]);
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || (FLAGS_registry.empty() == FLAGS_address.empty())) return Usage();
  CHECK(kvstore::RegisterDiscovery().ok());
  const std::string target = FLAGS_address.empty()
                                 ? kvstore::ServiceUri(FLAGS_registry, FLAGS_service)
                                 : "static://" + FLAGS_address;
  fulcrum::ChannelOptions options = kvstore::rpc::fulcrum_gen::KvStoreChannelOptions();
  options.service_name = FLAGS_service;
  options.default_timeout = std::chrono::milliseconds(FLAGS_timeout_ms);
  // --address: that replica whatever its role (a static list carries no roles to route on).
  if (!FLAGS_address.empty()) options.master_slave = false;
  fulcrum::CallOptions call;
  call.timeout = std::chrono::milliseconds(FLAGS_timeout_ms);
  try {
    kvstore::rpc::fulcrum_gen::KvStoreBalancedClient client(target, options);
    const std::string& cmd = args[0];
    if (cmd == "get" && args.size() == 2) {
      kvstore::rpc::GetResult r;
      client.get(r, args[1], call);
      if (!r.found) {
        std::fprintf(stderr, "not found\n");
        return 3;
      }
      std::printf("%s\n", r.value.c_str());
    } else if (cmd == "put" && args.size() == 3) {
      client.put(args[1], args[2], call);
      std::printf("OK\n");
    } else if (cmd == "remove" && args.size() == 2) {
      std::printf("%s\n", client.remove(args[1], call) ? "removed" : "absent");
    } else if (cmd == "cas" && args.size() == 4) {
      if (!client.compare_and_set(args[1], args[2], FLAGS_expect_absent, args[3], call)) {
        std::printf("no match\n");
        return 3;
      }
      std::printf("OK\n");
    } else if (cmd == "status" && args.size() == 1) {
      kvstore::rpc::ReplicaStatus s;
      client.status(s, call);
      std::printf(
          "role=%s epoch=%lld log_end=%lld last_epoch=%lld commit=%lld insync=%d keys=%lld\n",
          s.role.c_str(), static_cast<long long>(s.epoch), static_cast<long long>(s.log_end),
          static_cast<long long>(s.last_epoch), static_cast<long long>(s.commit_position),
          s.insync_slaves, static_cast<long long>(s.keys));
    } else {
      return Usage();
    }
  } catch (const kvstore::rpc::KvError& e) {
    std::fprintf(stderr, "kvstore error %d: %s%s%s\n", static_cast<int>(e.code), e.message.c_str(),
                 e.master.empty() ? "" : "; master ", e.master.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "failed: %s\n", e.what());
    return 1;
  }
  return 0;
}
