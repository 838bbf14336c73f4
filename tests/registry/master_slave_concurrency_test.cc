// The master-slave invariants under many schedules: random pauses and restarts driven by a
// seeded generator (single-threaded, FakeClock, invariants after every call), and real threads
// heartbeating, sweeping and switching over at once (for ThreadSanitizer).
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "master_slave_fixture.h"

namespace fulcrum::registry::ms_test {
namespace {

using std::chrono::milliseconds;

// Many random schedules of heartbeats, pauses and restarts of instances: the invariants hold
// after every step (checked in Beat, Step and Register).
TEST_F(MasterSlaveTest, NeverTwoWritableMastersUnderRandomSchedules) {
  std::mt19937 rng(20261123);
  const std::vector<int> ports = {9001, 9002, 9003};
  for (int port : ports) Register(port);
  std::map<int, int> paused_steps;
  std::map<int, int64_t> position;
  int promotions = 0;
  int64_t last_epoch = Group().epoch;
  for (int step = 0; step < 3000; ++step) {
    clock_.Advance(milliseconds(std::uniform_int_distribution<int>(10, 120)(rng)));
    for (int port : ports) {
      if (paused_steps[port] > 0) {
        --paused_steps[port];
        continue;
      }
      const int dice = std::uniform_int_distribution<int>(0, 99)(rng);
      if (dice < 3) {
        paused_steps[port] = std::uniform_int_distribution<int>(5, 30)(rng);  // a stall
      } else if (dice < 4) {
        Register(port);  // the process restarted
      } else {
        const thrift::Directives d = Beat(port, position[port]);
        if (d.reregister) Register(port);
        if (d.role == thrift::Role::MASTER) position[port] += 1;
        // Slaves replicate (lag a little behind the best-known position).
        int64_t best = 0;
        for (const auto& [p, pos] : position) best = std::max(best, pos);
        if (d.role == thrift::Role::SLAVE) position[port] = std::max(position[port], best - 1);
      }
    }
    store_->Sweep();
    CheckInvariants();
    if (Group().epoch != last_epoch) {
      ++promotions;
      last_epoch = Group().epoch;
    }
  }
  EXPECT_GT(promotions, 5) << "the schedule should exercise failovers";
}

// Heartbeats, sweeps, switchovers and slow saves from several threads at once (run under
// ThreadSanitizer too): no deadlock, at most one master per group in every snapshot, epochs
// never going back in any reply.
TEST(MasterSlaveConcurrencyTest, HeartbeatsSweepsAndPromotionsFromManyThreads) {
  class SlowPersister final : public AdminPersister {
   public:
    Status Save(const AdminState&) override {
      std::this_thread::sleep_for(std::chrono::microseconds(200));  // a slow fsync
      return Status::Ok();
    }
  } persister;
  testing::FakeClock clock;
  Store store(clock, StoreOptions{}, AdminState(), &persister);
  std::atomic<bool> stop{false};
  std::atomic<int> violations{0};
  std::atomic<int64_t> best_position{0};

  struct Instance {
    int port;
    std::string group;
    int64_t lease = 0;
    int64_t position = 0;
    int64_t last_epoch = 0;
    int pause = 0;
  };
  auto reg = [&](Instance& i) {
    thrift::Instance in;
    in.service_name = kService;
    in.host = "127.0.0.1";
    in.port = i.port;
    in.group = i.group;
    i.lease = store.Register(in)->id;
  };
  auto beater = [&](std::vector<Instance> mine, uint32_t seed) {
    std::mt19937 rng(seed);
    for (Instance& i : mine) reg(i);
    while (!stop.load()) {
      for (Instance& i : mine) {
        if (i.pause > 0) {
          --i.pause;
          continue;
        }
        if (rng() % 200 == 0) i.pause = 200;  // stall long enough to lose mastership
        thrift::LoadReport load;
        load.replication_position = i.position;
        load.writes_quiesced = true;  // no writes in this model: always quiesced
        const thrift::Directives d = store.Heartbeat(i.lease, load);
        if (d.reregister) {
          reg(i);
          continue;
        }
        if (d.epoch < i.last_epoch) violations.fetch_add(1);
        i.last_epoch = d.epoch;
        if (d.role == thrift::Role::MASTER && !d.stop_writes) {
          i.position = best_position.fetch_add(1) + 1;
        } else {
          i.position = best_position.load();  // slaves replicate everything
        }
      }
      std::this_thread::yield();
    }
  };
  std::thread b1(beater, std::vector<Instance>{{9001, "g1"}, {9002, "g1"}, {9003, "g2"}}, 1u);
  std::thread b2(beater, std::vector<Instance>{{9004, "g1"}, {9005, "g2"}, {9006, "g2"}}, 2u);
  std::atomic<int> switchovers{0};
  std::thread promoter([&] {
    int port = 9001;
    while (!stop.load()) {
      if (store.Promote(kService, Addr(port)).ok()) switchovers.fetch_add(1);
      port = port == 9006 ? 9001 : port + 1;
      std::this_thread::yield();
    }
  });
  std::map<std::string, int64_t> epochs;
  for (int i = 0; i < 4000; ++i) {
    clock.Advance(milliseconds(5));
    store.Sweep();
    const thrift::ServiceSnapshot snap = store.Lookup(kService);
    std::map<std::string, int> masters;
    for (const auto& inst : snap.instances) {
      if (inst.role == thrift::Role::MASTER) ++masters[inst.group];
    }
    for (const auto& [group, n] : masters) {
      if (n > 1) violations.fetch_add(1);
    }
    for (const auto& g : snap.groups) {
      if (g.epoch < epochs[g.group]) violations.fetch_add(1);
      epochs[g.group] = g.epoch;
    }
    std::this_thread::yield();
  }
  stop.store(true);
  store.Shutdown();  // releases a Promote still waiting
  b1.join();
  b2.join();
  promoter.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(epochs["g1"] + epochs["g2"], 2) << "no promotion happened: the test tested nothing";
}

}  // namespace
}  // namespace fulcrum::registry::ms_test
