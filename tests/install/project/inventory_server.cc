// inventory_server <registrar URI> <id>: serves Inventory on 127.0.0.1 (a port the OS picks),
// registers through the URI (fulcrum://host:port), prints "LISTENING <port>", and on SIGTERM
// deregisters, drains and exits 0.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include "fulcrum/discovery/fulcrum.h"
#include "inventory_fulcrum.h"

namespace {

class InventoryHandler : public inventory::InventoryIf {
 public:
  explicit InventoryHandler(std::string id) : id_(std::move(id)) {}
  int64_t count(const std::string& item, int64_t factor) override {
    if (item.empty()) {
      inventory::UnknownItem e;
      e.item = item;
      throw e;
    }
    return static_cast<int64_t>(item.size()) * factor;
  }
  void whoami(std::string& out) override { out = id_; }

 private:
  const std::string id_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: inventory_server <registrar URI> <id>\n");
    return 2;
  }
  // Block the stop signals before any server thread starts, so only sigwait sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  if (fulcrum::Status s = fulcrum::RegisterFulcrumDiscovery(); !s.ok()) {
    std::fprintf(stderr, "inventory_server: %s\n", s.ToString().c_str());
    return 1;
  }
  fulcrum::ServeOptions options;
  options.server.host = "127.0.0.1";
  options.server.port = 0;
  options.registrar = argv[1];
  options.instance.metadata["id"] = argv[2];
  options.drain.quiet_period = std::chrono::milliseconds(200);
  auto server = inventory::fulcrum_gen::InventoryServer::Serve(
      std::make_shared<InventoryHandler>(argv[2]), options);
  if (!server.ok()) {
    std::fprintf(stderr, "inventory_server: %s\n", server.status().ToString().c_str());
    return 1;
  }
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.value()->port()));
  std::fflush(stdout);

  int signal = 0;
  sigwait(&stop, &signal);
  if (fulcrum::Status s = server.value()->Drain(); !s.ok()) {
    std::fprintf(stderr, "inventory_server: drain: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
