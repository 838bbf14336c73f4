// fulcrumctl: the registry's admin command line.
//
//   fulcrumctl --registry=127.0.0.1:7000 list
//   fulcrumctl show calc [--json]
//   fulcrumctl --token_file=/etc/fulcrum/token set-weight calc 10.0.0.1:9090 5
//   fulcrumctl --token_file=... drain|undrain|remove calc 10.0.0.1:9090
//   fulcrumctl --token_file=... promote kv 10.0.0.2:7000      (planned master switchover)
//   fulcrumctl --registry=etcd://h1:p1,h2:p2?user=u&password_file=F show kv   (etcd: list, show)
//
// Exit status: 0 done, 1 the registry refused (unknown service/instance, bad input, wrong
// token), 2 usage error, 3 the registry is unreachable.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include <thrift/TOutput.h>

#include "ctl/ctl_format.h"
#include "ctl/etcd_view.h"
#include "etcd_uri.h"
#include "fulcrum/command_line.h"
#include "fulcrum/discovery/registry_connection.h"
#include "fulcrum/discovery/token_file.h"

DEFINE_string(registry, "127.0.0.1:7000",
              "The registry, host:port (or fulcrum://host:port); or etcd, "
              "etcd://h1:p1,h2:p2[?prefix=P&user=U&"
              "password_file=F&tls_ca_file=F] (list, show, promote)");
DEFINE_string(token_file, "", "File holding the registry's token (needed for changes)");
DEFINE_bool(json, false, "Print JSON instead of tables");
DEFINE_string(tls_ca_file, "", "Verify the registry's TLS certificate with this CA (enables TLS)");
DEFINE_int32(timeout_ms, 3000, "Connect and call timeout");
DEFINE_int32(promote_timeout_ms, 30000,
             "How long `promote` waits for the registry's answer (longer than the registry's "
             "--switchover_timeout_ms)");
DEFINE_int32(switchover_timeout_ms, 5000,
             "etcd only: how long `promote` may keep the master's writes stopped before the "
             "switchover is abandoned (fulcrum-registry has its own --switchover_timeout_ms)");
DEFINE_bool(accept_data_loss, false,
            "promote: make a slave master although the group's master is gone and the slave "
            "lacks writes it acknowledged (the group is stalled below its commit floor)");

namespace {

namespace reg = fulcrum::registry;

constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kUnreachable = 3;

const char* kUsageText =
    "usage: fulcrumctl [flags] <command>\n"
    "  list                              services with instance counts\n"
    "  show [SERVICE]                    instances (of every service without SERVICE):\n"
    "                                    health, weight, zone, drained,\n"
    "                                    last-heartbeat age, reported load\n"
    "  set-weight SERVICE HOST:PORT W    administrator's weight; W=clear returns to\n"
    "                                    the weight the instance registered with\n"
    "  drain SERVICE HOST:PORT           clients stop sending new calls to it\n"
    "  undrain SERVICE HOST:PORT\n"
    "  remove SERVICE HOST:PORT          forget an instance that is gone\n"
    "  promote SERVICE HOST:PORT         planned switchover: the slave HOST:PORT becomes\n"
    "                                    master of its group with a new epoch once it\n"
    "                                    has caught up (master-slave services); with\n"
    "                                    --accept_data_loss, of a group whose master is\n"
    "                                    gone and whose slaves all lack acknowledged writes\n"
    "on etcd (--registry=etcd://...): list, show and promote; the other commands\n"
    "change fulcrum-registry's admin state, which etcd does not have\n"
    "flags: --registry=host:port|etcd://... --token_file=F --json --tls_ca_file=F\n"
    "       --timeout_ms=N\n"
    "       --promote_timeout_ms=N --switchover_timeout_ms=N (etcd) --accept_data_loss";

int Usage(const std::string& why) {
  std::cerr << "fulcrumctl: " << why << "\n" << kUsageText << "\n";
  return kUsage;
}

// list and show against etcd's keys (ctl/etcd_view.h).
int RunOnEtcd(const std::string& cmd, const std::vector<std::string>& args, bool show_all,
              bool mutating) {
  namespace etcd = fulcrum::etcd;
  if (mutating && (cmd != "promote" || FLAGS_accept_data_loss)) {
    std::cerr << "fulcrumctl: " << cmd << (FLAGS_accept_data_loss ? " --accept_data_loss" : "")
              << " is not available on etcd: it changes fulcrum-registry's admin state (weights, "
                 "drains, forced promotions), which etcd does not have. On etcd a server's "
                 "weight is the one it registers with, a drain is the server's own (SIGTERM), "
                 "and a "
                 "master is moved by `promote` or by draining it. --accept_data_loss has no "
                 "etcd form: delete the group's ~commit key by hand (docs/master-slave.md).\n";
    return kRefused;
  }
  fulcrum::StatusOr<etcd::EtcdUri> uri =
      etcd::ParseEtcdUri(FLAGS_registry.substr(7), etcd::EtcdUriKind::kRegistrar);
  if (!uri.ok()) return Usage(uri.status().message() + " (--registry)");
  etcd::EtcdHttpClient http(uri->endpoints, std::chrono::milliseconds(FLAGS_timeout_ms),
                            uri->credentials, uri->tls);
  const auto unreachable = [](const fulcrum::Status& s) {
    std::cerr << "fulcrumctl: " << s.message() << "\n";
    return s.code() == fulcrum::StatusCode::kUnavailable ? kUnreachable : kRefused;
  };
  if (cmd == "promote") {
    if (FLAGS_switchover_timeout_ms <= 0) return Usage("--switchover_timeout_ms must be > 0");
    auto group = reg::EtcdPromote(http, uri->prefix, args[1], args[2],
                                  std::chrono::milliseconds(FLAGS_switchover_timeout_ms));
    if (!group.ok()) {
      std::cerr << "fulcrumctl: promote on etcd: " << group.status().message() << "\n";
      return group.status().code() == fulcrum::StatusCode::kUnavailable ? kUnreachable : kRefused;
    }
    std::cout << reg::FormatPromoted(*group, FLAGS_json);
    return 0;
  }
  if (cmd == "show" && !show_all) {
    auto snapshot = reg::EtcdLookup(http, uri->prefix, args[1]);
    if (!snapshot.ok()) return unreachable(snapshot.status());
    if (snapshot->instances.empty()) {
      std::cerr << "fulcrumctl: unknown service '" << args[1] << "' (no instance registered)\n";
      return kRefused;
    }
    std::cout << reg::FormatInstances(*snapshot, FLAGS_json);
    return 0;
  }
  auto all = reg::EtcdLookupAll(http, uri->prefix);
  if (!all.ok()) return unreachable(all.status());
  std::cout << (cmd == "list" ? reg::FormatServices(reg::Summaries(*all), FLAGS_json)
                              : reg::FormatAllInstances(*all, FLAGS_json));
  return 0;
}

int Run(const std::vector<std::string>& args) {
  if (args.empty()) return Usage("no command");
  const std::string& cmd = args[0];
  const std::map<std::string, size_t> arity = {{"list", 1},   {"show", 2},    {"set-weight", 4},
                                               {"drain", 3},  {"undrain", 3}, {"remove", 3},
                                               {"promote", 3}};
  auto it = arity.find(cmd);
  if (it == arity.end()) return Usage("unknown command '" + cmd + "'");
  const bool show_all = cmd == "show" && args.size() == 1;
  if (args.size() != it->second && !show_all) {
    return Usage("wrong number of arguments for " + cmd);
  }

  int32_t weight = 0;
  if (cmd == "set-weight") {
    char* end = nullptr;
    const long w = args[3] == "clear" ? -1 : std::strtol(args[3].c_str(), &end, 10);
    if ((end != nullptr && *end != '\0') || args[3].empty() || w < -1 || w > INT32_MAX) {
      return Usage("weight '" + args[3] + "' is not an integer >= 0 (or 'clear')");
    }
    weight = static_cast<int32_t>(w);
  }

  const bool mutating = cmd != "list" && cmd != "show";
  if (FLAGS_registry.rfind("etcd://", 0) == 0) return RunOnEtcd(cmd, args, show_all, mutating);

  std::string token;
  if (mutating && !FLAGS_token_file.empty()) {
    fulcrum::StatusOr<std::string> t = fulcrum::registry_client::ReadTokenFile(FLAGS_token_file);
    if (!t.ok()) {
      std::cerr << "fulcrumctl: " << t.status().message() << "\n";
      return kUsage;
    }
    token = t.value();
  }

  fulcrum::registry_client::ConnectionOptions options;
  std::string address = FLAGS_registry;
  if (address.rfind("fulcrum://", 0) == 0) address = address.substr(10);  // the URI form
  fulcrum::Status parsed =
      fulcrum::registry_client::ParseRegistryAddress(address, &options.host, &options.port);
  if (!parsed.ok()) return Usage(parsed.message() + " (--registry)");
  options.connect_timeout_ms = FLAGS_timeout_ms;
  // promote waits for the switchover (up to the registry's switchover timeout).
  options.recv_timeout_ms = cmd == "promote" ? FLAGS_promote_timeout_ms : FLAGS_timeout_ms;
  options.send_timeout_ms = FLAGS_timeout_ms;
  options.tls_ca_file = FLAGS_tls_ca_file;
  auto conn = fulcrum::registry_client::RegistryConnection::Open(options);
  if (!conn.ok()) {
    std::cerr << "fulcrumctl: " << conn.status().message()
              << "\n  is fulcrum-registry running there? (set --registry=host:port)\n";
    return kUnreachable;
  }
  reg::thrift::RegistryClient& client = conn.value()->client();
  try {
    if (cmd == "list") {
      std::vector<reg::thrift::ServiceSummary> services;
      client.list_services(services);
      std::cout << reg::FormatServices(services, FLAGS_json);
    } else if (show_all) {
      std::vector<reg::thrift::ServiceSummary> services;
      client.list_services(services);
      std::vector<reg::thrift::ServiceSnapshot> snapshots;
      for (const auto& s : services) {
        snapshots.emplace_back();
        client.lookup(snapshots.back(), s.service_name);
      }
      std::cout << reg::FormatAllInstances(snapshots, FLAGS_json);
    } else if (cmd == "show") {
      reg::thrift::ServiceSnapshot snapshot;
      client.lookup(snapshot, args[1]);
      if (snapshot.instances.empty() && snapshot.version == 0) {
        std::cerr << "fulcrumctl: unknown service '" << args[1] << "' (no instance registered)\n";
        return kRefused;
      }
      std::cout << reg::FormatInstances(snapshot, FLAGS_json);
    } else if (cmd == "set-weight") {
      client.set_weight(token, args[1], args[2], weight);
      std::cout << "weight of " << args[1] << "/" << args[2] << " set to " << weight << "\n";
    } else if (cmd == "drain") {
      client.drain(token, args[1], args[2]);
      std::cout << "drained " << args[1] << "/" << args[2] << "\n";
    } else if (cmd == "undrain") {
      client.undrain(token, args[1], args[2]);
      std::cout << "undrained " << args[1] << "/" << args[2] << "\n";
    } else if (cmd == "remove") {
      client.remove_instance(token, args[1], args[2]);
      std::cout << "removed " << args[1] << "/" << args[2] << "\n";
    } else if (cmd == "promote") {
      reg::thrift::GroupState group;
      client.promote(group, token, args[1], args[2], FLAGS_accept_data_loss);
      std::cout << reg::FormatPromoted(group, FLAGS_json);
    }
  } catch (const reg::thrift::RegistryError& e) {
    std::cerr << "fulcrumctl: the registry refused " << cmd << ": " << e.message << "\n";
    if (e.code == reg::thrift::ErrorCode::UNAUTHENTICATED && FLAGS_token_file.empty()) {
      std::cerr << "  pass the registry's token with --token_file=FILE\n";
    }
    return kRefused;
  } catch (const apache::thrift::TException& e) {
    std::cerr << "fulcrumctl: lost the registry at " << FLAGS_registry << ": " << e.what() << "\n";
    return kUnreachable;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv, kUsageText);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 2;  // Thrift's own chatter stays out of a CLI's output
  google::InitGoogleLogging(argv[0]);
  std::signal(SIGPIPE, SIG_IGN);  // a registry that hangs up mid-call is an error, not death
  // Thrift prints socket errors itself; fulcrumctl reports them once, in its own words.
  apache::thrift::GlobalOutput.setOutputFunction([](const char*) {});
  std::vector<std::string> args(argv + 1, argv + argc);
  return Run(args);
}
