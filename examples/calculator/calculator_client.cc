// calculator_client: calls a set of calculator replicas through the generated balanced client.
//
//   calculator_client --target=static://127.0.0.1:9001,127.0.0.1:9002 --calls=10
//
// Prints each answer with the replica that gave it.
#include <cstdio>
#include <string>

#include <gflags/gflags.h>
#include <glog/logging.h>

#include "calculator_fulcrum.h"
#include "fulcrum/command_line.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"

DEFINE_string(target, "static://127.0.0.1:9090",
              "Where the replicas are: static://h:p,h:p, fulcrum://registry:port/Calculator or "
              "etcd://h:p/Calculator");
DEFINE_int32(calls, 5, "How many add() calls to make");

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: calculator_client [--target=URI] [--calls=N]\n  Calls add() "
                            "through a balanced client.");
  google::InitGoogleLogging(argv[0]);
  // Both discovery libraries, so --target may name either.
  for (const fulcrum::Status& s :
       {fulcrum::RegisterFulcrumDiscovery(), fulcrum::RegisterEtcdDiscovery()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "calculator_client: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  try {
    // One client, shared by every thread that wants it; options default from the IDL.
    calc::fulcrum_gen::CalculatorBalancedClient client(FLAGS_target);
    for (int i = 0; i < FLAGS_calls; ++i) {
      std::string replica;
      client.whoami(replica);
      std::printf("add(%d, %d) = %lld (whoami: %s)\n", i, i,
                  static_cast<long long>(client.add(i, i)), replica.c_str());
    }
    fulcrum::CallOptions by_user = fulcrum::CallOptions::WithHashKey("user-42");
    std::printf("sum = %lld\n", static_cast<long long>(client.sum("user-42", {1, 2, 3}, by_user)));
    try {
      client.divide(1, 0);
    } catch (const calc::DivideByZero& e) {
      std::printf("divide(1, 0) threw DivideByZero: %s\n", e.message.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calculator_client: %s\n", e.what());
    return 1;
  }
  return 0;
}
