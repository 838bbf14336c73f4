// inventory_client <resolver URI> <calls>: calls Inventory through the generated balanced
// client, which finds the servers through the URI (fulcrum://host:port/Inventory), and checks
// every answer, the declared exception and that more than one replica answered when asked to.
// Prints "inventory_client OK ..." and exits 0 only if all was right.
//
// It also registers the etcd:// discovery library and creates an etcd:// resolver (which
// contacts no etcd until started): the installed Fulcrum::etcd links and its scheme works.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"
#include "fulcrum/resolver.h"
#include "inventory_fulcrum.h"

namespace {

int Fail(const std::string& why) {
  std::fprintf(stderr, "inventory_client: FAILED: %s\n", why.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: inventory_client <resolver URI> <calls> <replicas expected>\n");
    return 2;
  }
  const int calls = std::atoi(argv[2]);
  const size_t replicas = static_cast<size_t>(std::atoi(argv[3]));
  for (const fulcrum::Status& s :
       {fulcrum::RegisterFulcrumDiscovery(), fulcrum::RegisterEtcdDiscovery()}) {
    if (!s.ok()) return Fail(s.ToString());
  }
  if (auto etcd = fulcrum::CreateResolver("etcd://127.0.0.1:2379/Inventory"); !etcd.ok()) {
    return Fail("etcd:// after RegisterEtcdDiscovery(): " + etcd.status().ToString());
  }

  try {
    inventory::fulcrum_gen::InventoryBalancedClient client(argv[1]);
    for (int i = 0; i < calls; ++i) {
      const std::string item(static_cast<size_t>(i % 7 + 1), 'x');
      const int64_t got = client.count(item, i);
      const int64_t want = static_cast<int64_t>(item.size()) * i;
      if (got != want) {
        return Fail("count(" + item + ", " + std::to_string(i) + ") = " + std::to_string(got) +
                    ", want " + std::to_string(want));
      }
    }
    try {
      client.count("", 1);
      return Fail("count(\"\", 1) did not throw UnknownItem");
    } catch (const inventory::UnknownItem&) {
    }
    // The IDL asks for round_robin: consecutive calls go to every replica in turn.
    std::set<std::string> answered_by;
    for (size_t i = 0; i < 2 * replicas; ++i) {
      std::string id;
      client.whoami(id);
      answered_by.insert(id);
    }
    if (answered_by.size() != replicas) {
      return Fail(std::to_string(answered_by.size()) + " replica(s) answered, want " +
                  std::to_string(replicas));
    }
    std::printf("inventory_client OK: %d calls answered correctly by %zu replica(s)\n", calls,
                answered_by.size());
  } catch (const std::exception& e) {
    return Fail(e.what());
  }
  return 0;
}
