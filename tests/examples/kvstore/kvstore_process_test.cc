// The kvstore as real processes on 127.0.0.1: a control plane, three kvstore_server replicas
// (min_insync_replicas 1), and clients through its resolver. Masters are SIGKILLed and
// SIGSTOPped, the registry is SIGKILLed, a switchover runs under load; after each, every
// acknowledged write must be readable from the master. The KvStoreProcessTest suite runs
// against both control planes (fulcrum-registry, and etcd where the replicas elect their
// master themselves); KvStoreRegistryTest's tests use what only fulcrum-registry has (a
// registry restart).
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TSocket.h>
#include <nlohmann/json.hpp>

#include "control_plane.h"
#include "fulcrum/framed_transport.h"
#include "fulcrum/role.h"
#include "kv_cluster.h"
#include "support/fault_proxy.h"

namespace kvstore::test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int kReplicas = 3;

// KVSTORE_KILLS overrides the number of kills (the benchmark runs more).
int KillsFromEnv(int fallback) {
  const char* v = std::getenv("KVSTORE_KILLS");
  return v != nullptr && std::atoi(v) > 0 ? std::atoi(v) : fallback;
}

double Ms(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class KvStoreFixture {
 protected:
  explicit KvStoreFixture(ControlPlane plane) : cluster_(plane) {}

  void StartGroup() {
    ASSERT_TRUE(cluster_.StartRegistry()) << cluster_.LogTail();
    for (int i = 0; i < kReplicas; ++i) ASSERT_GE(cluster_.StartServer(), 0) << cluster_.LogTail();
    auto g = cluster_.WaitForMaster(0, seconds(10));
    ASSERT_TRUE(g.has_value()) << cluster_.LogTail();
    group_ = *g;
    ASSERT_TRUE(cluster_.WaitForInSync(group_.master, kReplicas - 1, seconds(10)))
        << cluster_.LogTail();
  }

  void ExpectEveryAckReadable(const Writer& writer) {
    const std::vector<Writer::Ack> acks = writer.Acked();
    const std::vector<std::string> missing = MissingKeys(cluster_.RegistryUri(), acks);
    EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acks.size()
                                 << " acknowledged writes lost, first: " << missing.front() << "\n"
                                 << cluster_.LogTail();
  }

  KvCluster cluster_;
  GroupView group_;
};

class KvStoreProcessTest : public KvStoreFixture, public ::testing::TestWithParam<ControlPlane> {
 protected:
  KvStoreProcessTest() : KvStoreFixture(GetParam()) {}
  void SetUp() override { StartGroup(); }
};

INSTANTIATE_TEST_SUITE_P(ControlPlanes, KvStoreProcessTest,
                         ::testing::Values(ControlPlane::kRegistry, ControlPlane::kEtcd),
                         [](const ::testing::TestParamInfo<ControlPlane>& info) {
                           return ControlPlaneName(info.param);
                         });

class KvStoreRegistryTest : public KvStoreFixture, public ::testing::Test {
 protected:
  KvStoreRegistryTest() : KvStoreFixture(ControlPlane::kRegistry) {}
  void SetUp() override { StartGroup(); }
};

// (a) SIGKILL the master at random moments under write load; restart it as a slave each time.
TEST_P(KvStoreProcessTest, NoAcknowledgedWriteIsLostWhenMastersAreKilled) {
  // CI's counts (the suite runs on both control planes; an etcd failover waits out the dead
  // master's 2 s lease); KVSTORE_KILLS=40 is the documented full run.
  const int kills = KillsFromEnv(GetParam() == ControlPlane::kEtcd ? 4 : 12);
  std::mt19937 random(20261123);
  Writer writer(cluster_.RegistryUri(), 2);
  std::vector<double> failover_ms;
  for (int k = 0; k < kills; ++k) {
    // Let writes flow for a random while, then kill whoever is master.
    std::this_thread::sleep_for(milliseconds(std::uniform_int_distribution<>(50, 400)(random)));
    const int victim = cluster_.IndexOf(group_.master);
    ASSERT_GE(victim, 0) << group_.master;
    const auto killed_at = std::chrono::steady_clock::now();
    cluster_.Kill(victim);
    ASSERT_GE(cluster_.StartServer(), 0) << cluster_.LogTail();  // back as a slave
    auto g = cluster_.WaitForMaster(group_.epoch, seconds(15));
    ASSERT_TRUE(g.has_value()) << "no new master after kill " << k << "\n" << cluster_.LogTail();
    ASSERT_NE(g->master, group_.master);
    group_ = *g;
    std::optional<SteadyTime> first;
    const auto deadline = std::chrono::steady_clock::now() + seconds(15);
    while (!(first = writer.FirstAckStartedAfter(killed_at)) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_TRUE(first.has_value()) << "no write acknowledged after kill " << k << "\n"
                                   << cluster_.LogTail();
    failover_ms.push_back(Ms(*first - killed_at));
    // Both slaves (the survivor and the restarted one) in sync before the next kill.
    ASSERT_TRUE(cluster_.WaitForInSync(group_.master, kReplicas - 1, seconds(15)))
        << cluster_.LogTail();
  }
  writer.Stop();
  std::printf(
      "kvstore failover over %d kills: p50 %.0f ms, p99 %.0f ms, max %.0f ms; "
      "%llu writes acknowledged, %llu failed\n",
      kills, Percentile(failover_ms, 0.5), Percentile(failover_ms, 0.99),
      Percentile(failover_ms, 1.0), static_cast<unsigned long long>(writer.acked()),
      static_cast<unsigned long long>(writer.failed()));
  for (const std::string& f : writer.Failures()) std::printf("  failed: %s\n", f.c_str());
  EXPECT_GT(writer.acked(), static_cast<uint64_t>(kills));
  ExpectEveryAckReadable(writer);
}

// The longest stretch, in ms, with no write acknowledged, from `from` to the last ack: the
// gaps between consecutive acknowledgements (any writer thread).
double LongestWriteGapMs(std::vector<Writer::Ack> acks, SteadyTime from) {
  std::sort(acks.begin(), acks.end(), [](const auto& a, const auto& b) { return a.end < b.end; });
  double longest = 0;
  SteadyTime last = from;
  for (const auto& a : acks) {
    if (a.end < from) continue;
    longest = std::max(longest, Ms(a.end - last));
    last = a.end;
  }
  return longest;
}

// (a'') A master SIGKILLed and started again on its port at once, before the registry's
// promotion delay has passed: the new process (an empty log) registers at the master's address.
// It is a new incarnation, not the master that held the lease: the registry must promote an
// up-to-date slave, never hand the empty newcomer the old master's role (its slaves would then
// resync from its empty log and drop every acknowledged write).
TEST_P(KvStoreProcessTest, AMasterRestartedOnItsPortBeforePromotionIsANewInstance) {
  Writer writer(cluster_.RegistryUri(), 2);
  for (int k = 0; k < 3; ++k) {
    const auto deadline = std::chrono::steady_clock::now() + seconds(15);
    while (writer.acked() < static_cast<uint64_t>(200 * (k + 1)) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    const int victim = cluster_.IndexOf(group_.master);
    ASSERT_GE(victim, 0) << group_.master;
    cluster_.Kill(victim);
    ASSERT_TRUE(cluster_.Restart(victim)) << cluster_.LogTail();
    auto g = cluster_.WaitForMaster(group_.epoch, seconds(15));
    ASSERT_TRUE(g.has_value()) << "no new master after kill " << k << "\n" << cluster_.LogTail();
    EXPECT_NE(g->master, group_.master) << "the restarted, empty process became master";
    group_ = *g;
    ASSERT_TRUE(cluster_.WaitForInSync(group_.master, kReplicas - 1, seconds(15)))
        << cluster_.LogTail();
  }
  writer.Stop();
  EXPECT_GT(writer.acked(), 600u);
  ExpectEveryAckReadable(writer);
}

// (a') Repeated failovers with restarts on the same ports, not waiting for the slaves to catch
// up: on a fixed beat the master is SIGKILLed and 1 s later started again on its port (empty),
// under four writers. Writes may pause for a failover, but never stall for long: a restarted
// instance is a new incarnation (clients and the new master must not hold its predecessor's
// record against it). KVSTORE_FIXED_PORT_KILLS sets the kills (docs/benchmarks.md uses 50).
// The beat is 2.5 s with fulcrum-registry and 4 s on etcd: a failover there waits out the dead
// master's 2 s lease, and a beat shorter than failover + resync kills masters while both
// slaves are still resyncing from a snapshot (both empty): then no live replica holds the
// acknowledged writes, and the group rightly stays without a master (the commit position;
// seen once in 45 kills at 2.5 s on etcd).
TEST_P(KvStoreProcessTest, RepeatedFailoversOnFixedPortsNeverStallWrites) {
  const char* env = std::getenv("KVSTORE_FIXED_PORT_KILLS");
  const int kills = env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 5;  // CI's count
  const milliseconds beat(GetParam() == ControlPlane::kEtcd ? 4000 : 2500);
  Writer writer(cluster_.RegistryUri(), 4);
  const SteadyTime began = std::chrono::steady_clock::now();
  std::vector<SteadyTime> killed_at;
  SteadyTime next_kill = began + beat;
  // Kills on a fixed beat, whether or not the last failover has finished; a beat with no
  // master to kill is skipped (bounded: the whole loop gives up after 1.45 beats per kill).
  const SteadyTime give_up = began + seconds(10) + beat * kills * 29 / 20;
  while (static_cast<int>(killed_at.size()) < kills && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_until(next_kill);
    next_kill += beat;
    auto g = cluster_.Lookup();
    if (!g.has_value() || g->master.empty()) continue;
    const int victim = cluster_.IndexOf(g->master);
    ASSERT_GE(victim, 0) << g->master;
    killed_at.push_back(std::chrono::steady_clock::now());
    cluster_.Kill(victim);
    std::this_thread::sleep_for(milliseconds(1000));
    ASSERT_TRUE(cluster_.Restart(victim)) << "restart after kill " << killed_at.size() << "\n"
                                          << cluster_.LogTail();
  }
  std::this_thread::sleep_for(milliseconds(2500));
  writer.Stop();
  ASSERT_EQ(static_cast<int>(killed_at.size()), kills) << cluster_.LogTail();
  std::vector<double> failover_ms;
  for (size_t k = 0; k < killed_at.size(); ++k) {
    std::optional<SteadyTime> first = writer.FirstAckStartedAfter(killed_at[k]);
    ASSERT_TRUE(first.has_value()) << "no write acknowledged after kill " << k << "\n"
                                   << cluster_.LogTail();
    failover_ms.push_back(Ms(*first - killed_at[k]));
  }
  const double longest = LongestWriteGapMs(writer.Acked(), began);
  std::printf(
      "fixed-port failovers over %d kills: p50 %.0f ms, p99 %.0f ms, max %.0f ms; longest time "
      "without an acknowledged write %.0f ms; %llu writes acknowledged, %llu failed\n",
      kills, Percentile(failover_ms, 0.5), Percentile(failover_ms, 0.99),
      Percentile(failover_ms, 1.0), longest, static_cast<unsigned long long>(writer.acked()),
      static_cast<unsigned long long>(writer.failed()));
  for (const std::string& f : writer.Failures()) std::printf("  failed: %s\n", f.c_str());
  // Loose enough for loaded CI machines; a group that stalls after a restart on the master's
  // port (no master accepting writes for 15 s or more) exceeds it.
  EXPECT_LT(longest, 8000) << cluster_.LogTail();
  ExpectEveryAckReadable(writer);
}

// Calls `put` on one replica directly, without any routing: what a client that still
// believes in an old master sees.
struct DirectPut {
  bool ok = false;
  std::optional<fulcrum::NotMaster> redirect;
  std::string error;
};
DirectPut PutDirectly(const std::string& address, const std::string& key) {
  DirectPut out;
  const size_t colon = address.rfind(':');
  try {
    auto socket = std::make_shared<apache::thrift::transport::TSocket>(
        address.substr(0, colon), std::stoi(address.substr(colon + 1)));
    socket->setConnTimeout(500);
    socket->setRecvTimeout(3000);
    auto transport = std::make_shared<fulcrum::FramedTransport>(socket);
    rpc::KvStoreClient client(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(transport));
    transport->open();
    client.put(key, key);
    out.ok = true;
  } catch (const apache::thrift::TApplicationException& e) {
    if (e.getType() == fulcrum::kNotMasterExceptionType)
      out.redirect = fulcrum::ParseNotMaster(e.what());
    out.error = e.what();
  } catch (const rpc::KvError& e) {
    out.error = e.message;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

// (b) A master stopped past its lease comes back after a slave was promoted: it takes no
// write, and a client talking to it is told where the new master is.
TEST_P(KvStoreProcessTest, ZombieMasterAcceptsNoWriteAndRedirects) {
  Writer writer(cluster_.RegistryUri(), 2);
  std::this_thread::sleep_for(milliseconds(300));
  const GroupView old = group_;
  const int zombie = cluster_.IndexOf(old.master);
  ASSERT_GE(zombie, 0);
  cluster_.Server(zombie).Signal(SIGSTOP);
  auto g = cluster_.WaitForMaster(old.epoch, seconds(15));
  ASSERT_TRUE(g.has_value()) << cluster_.LogTail();
  ASSERT_NE(g->master, old.master);
  // Writes resume on the new master before the zombie wakes.
  const auto promoted_at = std::chrono::steady_clock::now();
  const auto deadline = promoted_at + seconds(15);
  while (!writer.FirstAckStartedAfter(promoted_at) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(writer.FirstAckStartedAfter(promoted_at).has_value()) << cluster_.LogTail();
  cluster_.Server(zombie).Signal(SIGCONT);
  // From the moment it wakes, every write it is sent is refused with a redirect; once it has
  // heard from the registry, the redirect names the new master.
  bool named_new_master = false;
  for (int i = 0; i < 200 && !named_new_master; ++i) {
    const std::string key = "zombie-" + std::to_string(i);
    DirectPut r = PutDirectly(old.master, key);
    ASSERT_FALSE(r.ok) << "the zombie acknowledged " << key << "\n" << cluster_.LogTail();
    ASSERT_TRUE(r.redirect.has_value()) << "not a NotMaster refusal: " << r.error;
    EXPECT_GE(r.redirect->epoch, old.epoch);
    named_new_master = r.redirect->master_address == g->master && r.redirect->epoch == g->epoch;
    if (!named_new_master) std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_TRUE(named_new_master) << cluster_.LogTail();
  // Nothing the zombie was sent exists anywhere.
  rpc::fulcrum_gen::KvStoreBalancedClient client(ServiceUri(cluster_.RegistryUri(), "KvStore"),
                                                 rpc::fulcrum_gen::KvStoreChannelOptions());
  rpc::GetResult r;
  client.get(r, "zombie-0");
  EXPECT_FALSE(r.found);
  auto zs = cluster_.Status(old.master);
  ASSERT_TRUE(zs.has_value());
  EXPECT_EQ(zs->role, "slave");
  writer.Stop();
  ExpectEveryAckReadable(writer);
}

// (c) The registry is SIGKILLed and restarted under load: never two masters, epochs never go
// back, and no acknowledged write is lost.
TEST_F(KvStoreRegistryTest, RegistryRestartKeepsOneMasterAndEpochsOnlyGrow) {
  Writer writer(cluster_.RegistryUri(), 2);
  std::atomic<bool> stop{false};
  std::atomic<int> samples{0};
  std::mutex mu;
  std::vector<std::string> violations;
  std::thread poller([&] {
    int64_t max_epoch = 0;
    std::map<std::string, int64_t> server_epochs;
    while (!stop.load()) {
      auto v = cluster_.Lookup();
      if (v) {
        samples++;
        std::lock_guard lock(mu);
        if (v->up_masters > 1) violations.push_back(std::to_string(v->up_masters) + " masters");
        if (v->known && v->epoch < max_epoch) {
          violations.push_back("epoch went back from " + std::to_string(max_epoch) + " to " +
                               std::to_string(v->epoch));
        }
        max_epoch = std::max(max_epoch, v->epoch);
      }
      std::map<int64_t, int> masters_by_epoch;  // what the replicas themselves believe
      for (int i = 0; i < kReplicas; ++i) {
        auto s = cluster_.Status(cluster_.Address(i));
        if (!s) continue;
        if (s->role == "master") masters_by_epoch[s->epoch]++;
        int64_t& e = server_epochs[cluster_.Address(i)];
        std::lock_guard lock(mu);
        if (s->epoch < e) violations.push_back(cluster_.Address(i) + ": epoch went back");
        e = std::max(e, s->epoch);
      }
      for (const auto& [epoch, n] : masters_by_epoch) {
        std::lock_guard lock(mu);
        if (n > 1)
          violations.push_back(std::to_string(n) + " replicas master of epoch " +
                               std::to_string(epoch));
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  std::this_thread::sleep_for(milliseconds(500));
  cluster_.registry().Signal(SIGKILL);
  cluster_.registry().Wait(seconds(10));
  std::this_thread::sleep_for(milliseconds(1000));  // longer than the master's lease
  ASSERT_TRUE(cluster_.StartRegistry()) << cluster_.LogTail();
  auto g = cluster_.WaitForMaster(0, seconds(15));
  ASSERT_TRUE(g.has_value()) << cluster_.LogTail();
  EXPECT_GE(g->epoch, group_.epoch);
  // Writes flow again after the restart.
  const auto restarted_at = std::chrono::steady_clock::now();
  const auto deadline = restarted_at + seconds(15);
  while (!writer.FirstAckStartedAfter(restarted_at) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(writer.FirstAckStartedAfter(restarted_at).has_value()) << cluster_.LogTail();
  std::this_thread::sleep_for(milliseconds(500));
  stop.store(true);
  poller.join();
  writer.Stop();
  EXPECT_GT(samples.load(), 10);
  std::lock_guard lock(mu);
  EXPECT_TRUE(violations.empty()) << violations.front() << "\n" << cluster_.LogTail();
  ExpectEveryAckReadable(writer);
}

// (d) A planned switchover under write load: no call fails.
TEST_P(KvStoreProcessTest, PlannedSwitchoverUnderLoadFailsNoCall) {
  Writer writer(cluster_.RegistryUri(), 4, milliseconds(1));
  std::this_thread::sleep_for(milliseconds(500));
  for (int round = 0; round < 2; ++round) {
    std::string target;
    for (int i = 0; i < kReplicas; ++i) {
      if (cluster_.Address(i) != group_.master) target = cluster_.Address(i);
    }
    const uint64_t before = writer.acked();
    registry_test::CommandResult r = cluster_.Ctl({"promote", "KvStore", target});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err << cluster_.LogTail();
    auto g = cluster_.WaitForMaster(group_.epoch, seconds(5));
    ASSERT_TRUE(g.has_value());
    EXPECT_EQ(g->master, target);
    // The registry counts epochs; etcd's are revisions (they only grow).
    if (GetParam() == ControlPlane::kRegistry) {
      EXPECT_EQ(g->epoch, group_.epoch + 1);
    }
    group_ = *g;
    ASSERT_TRUE(cluster_.WaitForInSync(group_.master, kReplicas - 1, seconds(10)))
        << cluster_.LogTail();
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_GT(writer.acked(), before);
  }
  writer.Stop();
  const auto failures = writer.Failures();
  EXPECT_EQ(writer.failed(), 0u) << (failures.empty() ? "" : failures.front()) << "\n"
                                 << cluster_.LogTail();
  ExpectEveryAckReadable(writer);
}

// A switchover to a slave that cannot catch up (SIGSTOPped) is abandoned within its timeout
// and the master takes writes again: fulcrumctl says so, the master and epoch are unchanged.
TEST_P(KvStoreProcessTest, AStuckSwitchoverIsAbandonedAndTheMasterWritesAgain) {
  Writer writer(cluster_.RegistryUri(), 2);
  std::string target;
  for (int i = 0; i < kReplicas; ++i) {
    if (cluster_.Address(i) != group_.master) target = cluster_.Address(i);
  }
  cluster_.Server(cluster_.IndexOf(target)).Signal(SIGSTOP);
  const auto asked = std::chrono::steady_clock::now();
  registry_test::CommandResult r =
      cluster_.Ctl({"--switchover_timeout_ms=3000", "promote", "KvStore", target});
  const double took_ms = Ms(std::chrono::steady_clock::now() - asked);
  cluster_.Server(cluster_.IndexOf(target)).Signal(SIGCONT);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::printf("stuck switchover: fulcrumctl returned after %.0f ms: %s", took_ms, r.err.c_str());
  const auto resumed_after = std::chrono::steady_clock::now();
  const auto deadline = resumed_after + seconds(10);
  while (!writer.FirstAckStartedAfter(resumed_after) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_TRUE(writer.FirstAckStartedAfter(resumed_after).has_value()) << cluster_.LogTail();
  auto g = cluster_.Lookup();
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->master, group_.master);
  EXPECT_EQ(g->epoch, group_.epoch);
  writer.Stop();
  ExpectEveryAckReadable(writer);
}

// With both slaves gone the master refuses writes up front (nothing is written), and takes
// them again once a new slave has caught up from a snapshot.
TEST_P(KvStoreProcessTest, TooFewInSyncSlavesRefuseWritesUntilOneCatchesUp) {
  rpc::fulcrum_gen::KvStoreBalancedClient client(ServiceUri(cluster_.RegistryUri(), "KvStore"),
                                                 rpc::fulcrum_gen::KvStoreChannelOptions());
  client.put("before", "before");
  for (int i = 0; i < kReplicas; ++i) {
    if (cluster_.Address(i) != group_.master) cluster_.Kill(i);
  }
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  std::optional<rpc::ReplicaStatus> s;
  while ((s = cluster_.Status(group_.master)) && s->insync_slaves > 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(s.has_value());
  ASSERT_EQ(s->insync_slaves, 0);
  const int64_t log_end = s->log_end;
  try {
    client.put("refused", "refused");
    ADD_FAILURE() << "a write was acknowledged with no slave in sync";
  } catch (const rpc::KvError& e) {
    EXPECT_EQ(e.code, rpc::ErrorCode::NOT_ENOUGH_REPLICAS);
    EXPECT_NE(e.message.find("0 slave(s) in sync, 1 required"), std::string::npos) << e.message;
  }
  auto after = cluster_.Status(group_.master);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->log_end, log_end);  // nothing was written
  ASSERT_GE(cluster_.StartServer(), 0);
  ASSERT_TRUE(cluster_.WaitForInSync(group_.master, 1, seconds(10))) << cluster_.LogTail();
  client.put("after", "after");
  rpc::GetResult r;
  client.get(r, "before");
  EXPECT_EQ(r.value, "before");
  client.get(r, "refused");
  EXPECT_FALSE(r.found);
}

// The CLI from the README, against the cluster.
TEST_P(KvStoreProcessTest, ClientCommandLine) {
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {KVSTORE_CLIENT_BIN, "--registry=" + cluster_.RegistryUri()};
    argv.insert(argv.end(), args.begin(), args.end());
    return registry_test::RunCommand(argv, seconds(20));
  };
  registry_test::CommandResult r = run({"put", "greeting", "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"get", "greeting"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello\n");
  r = run({"cas", "greeting", "nope", "x"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_EQ(r.out, "no match\n");
  r = run({"cas", "greeting", "hello", "bonjour"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"--expect_absent", "cas", "fresh", "", "v"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run({"remove", "greeting"});
  EXPECT_EQ(r.out, "removed\n") << r.err;
  r = run({"get", "greeting"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  r = run({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("usage:"), std::string::npos) << r.err;
  // A slave asked directly refuses a write and names the master.
  auto g = cluster_.Lookup();
  ASSERT_TRUE(g.has_value());
  std::string slave;
  for (int i = 0; i < kReplicas; ++i) {
    if (cluster_.Address(i) != g->master) slave = cluster_.Address(i);
  }
  r = registry_test::RunCommand({KVSTORE_CLIENT_BIN, "--address=" + slave, "put", "k", "v"},
                                seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not master; master=" + g->master), std::string::npos) << r.err;
  r = registry_test::RunCommand({KVSTORE_CLIENT_BIN, "--address=" + slave, "status"}, seconds(20));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("role=slave epoch=" + std::to_string(g->epoch), 0), 0u) << r.out;
}

// etcd's own faults while masters fail over (the etcd control plane: a 3-member cluster). The
// kvstore master is SIGKILLed under write load four times; with the second kill the etcd
// leader is SIGKILLed too (started again once a new master writes), with the third a minority
// member is SIGSTOPped for longer than the replicas' lease TTL. Writes resume after each
// failover, epochs never go back, and every acknowledged write is read back.
TEST(KvStoreEtcdTest, EtcdLeaderKilledAndAMemberStoppedWhileMastersFailOver) {
  KvCluster cluster(ControlPlane::kEtcd);
  ASSERT_TRUE(cluster.StartRegistry()) << cluster.LogTail();
  for (int i = 0; i < kReplicas; ++i) ASSERT_GE(cluster.StartServer(), 0) << cluster.LogTail();
  auto group = cluster.WaitForMaster(0, seconds(15));
  ASSERT_TRUE(group.has_value()) << cluster.LogTail();
  ASSERT_TRUE(cluster.WaitForInSync(group->master, kReplicas - 1, seconds(15)))
      << cluster.LogTail();
  Writer writer(cluster.RegistryUri(), 2);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> violations;
  std::thread poller([&] {
    int64_t max_epoch = 0;
    while (!stop.load()) {
      auto v = cluster.Lookup();  // nullopt while no etcd member answers
      if (v && v->epoch > 0) {
        std::lock_guard lock(mu);
        if (v->epoch < max_epoch) {
          violations.push_back("epoch went back from " + std::to_string(max_epoch) + " to " +
                               std::to_string(v->epoch));
        }
        max_epoch = std::max(max_epoch, v->epoch);
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  });
  std::vector<double> failover_ms;
  for (int k = 0; k < 4; ++k) {
    std::this_thread::sleep_for(milliseconds(300));
    int etcd_killed = -1;
    int etcd_paused = -1;
    if (k == 1) {
      auto leader = cluster.etcd().Leader();
      ASSERT_TRUE(leader.ok()) << leader.status();
      etcd_killed = *leader;
      cluster.etcd().member(etcd_killed).Kill();
    }
    if (k == 2) {
      auto leader = cluster.etcd().Leader();
      ASSERT_TRUE(leader.ok()) << leader.status();
      etcd_paused = (*leader + 1) % cluster.etcd().size();
      cluster.etcd().member(etcd_paused).Pause();
    }
    const int victim = cluster.IndexOf(group->master);
    ASSERT_GE(victim, 0) << group->master;
    const auto killed_at = std::chrono::steady_clock::now();
    cluster.Kill(victim);
    ASSERT_TRUE(cluster.Restart(victim)) << cluster.LogTail();
    auto next = cluster.WaitForMaster(group->epoch, seconds(30));
    ASSERT_TRUE(next.has_value()) << "no new master after kill " << k << "\n" << cluster.LogTail();
    group = next;
    std::optional<SteadyTime> first;
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (!(first = writer.FirstAckStartedAfter(killed_at)) &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    ASSERT_TRUE(first.has_value()) << "no write acknowledged after kill " << k << "\n"
                                   << cluster.LogTail();
    failover_ms.push_back(Ms(*first - killed_at));
    if (etcd_killed >= 0) {
      fulcrum::Status s = cluster.etcd().member(etcd_killed).Start();
      ASSERT_TRUE(s.ok()) << s << "\n" << cluster.LogTail();
    }
    if (etcd_paused >= 0) {
      std::this_thread::sleep_until(killed_at + seconds(3));  // past the 2 s TTL
      cluster.etcd().member(etcd_paused).Resume();
    }
    ASSERT_TRUE(cluster.WaitForInSync(group->master, kReplicas - 1, seconds(20)))
        << cluster.LogTail();
  }
  writer.Stop();
  stop.store(true);
  poller.join();
  std::printf(
      "etcd faults during failovers: failover %s ms; %llu writes acknowledged, %llu failed\n",
      [&] {
        std::string out;
        for (double ms : failover_ms) out += (out.empty() ? "" : ", ") + std::to_string(int(ms));
        return out;
      }()
          .c_str(),
      static_cast<unsigned long long>(writer.acked()),
      static_cast<unsigned long long>(writer.failed()));
  {
    std::lock_guard lock(mu);
    EXPECT_TRUE(violations.empty()) << violations.front();
  }
  const std::vector<std::string> missing = MissingKeys(cluster.RegistryUri(), writer.Acked());
  EXPECT_TRUE(missing.empty()) << missing.size()
                               << " acknowledged writes lost, first: " << missing.front() << "\n"
                               << cluster.LogTail();
}

// fulcrumctl shows the group as the control plane sees it (on etcd: read from etcd's keys); on
// etcd the commands that change fulcrum-registry's admin state are refused and say why.
TEST_P(KvStoreProcessTest, FulcrumctlShowsTheGroupsMasterAndEpoch) {
  registry_test::CommandResult r = cluster_.Ctl({"--json", "show", "KvStore"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  ASSERT_EQ(j["groups"].size(), 1u) << r.out;
  EXPECT_EQ(j["groups"][0]["master"], group_.master) << r.out;
  EXPECT_EQ(j["groups"][0]["epoch"], group_.epoch) << r.out;
  ASSERT_EQ(j["instances"].size(), static_cast<size_t>(kReplicas)) << r.out;
  int masters = 0;
  for (const auto& i : j["instances"]) {
    EXPECT_EQ(i["health"], "UP") << r.out;
    EXPECT_EQ(i["epoch"], group_.epoch) << r.out;
    if (i["role"] == "MASTER") {
      ++masters;
      EXPECT_EQ(i["address"], group_.master) << r.out;
    }
  }
  EXPECT_EQ(masters, 1) << r.out;
  r = cluster_.Ctl({"list"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("KvStore"), std::string::npos) << r.out;
  r = cluster_.Ctl({"show"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(group_.master), std::string::npos) << r.out;
  if (GetParam() == ControlPlane::kEtcd) {
    r = cluster_.Ctl({"drain", "KvStore", group_.master});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("not available on etcd"), std::string::npos) << r.err;
    r = cluster_.Ctl({"show", "NoSuchService"});
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find("unknown service"), std::string::npos) << r.err;
  }
}

// (f) A partition between the master and the registry: each replica reaches the registry
// through its own FaultProxy; the master's is blackholed while clients still reach the master.
// It must stop admitting writes within its lease, the registry promotes a slave, writes go on
// there, and nothing the cut-off master acknowledged is lost. After the partition heals, the
// old master is a slave of the new epoch.
TEST(KvStorePartitionTest, AMasterCutOffFromTheRegistryStopsWritesAndIsReplaced) {
  KvCluster cluster;
  ASSERT_TRUE(cluster.StartRegistry()) << cluster.LogTail();
  const int registry_port = std::stoi(cluster.RegistryAddress().substr(10));
  std::vector<std::unique_ptr<fulcrum::testing::FaultProxy>> proxies;
  for (int i = 0; i < kReplicas; ++i) {
    proxies.push_back(std::make_unique<fulcrum::testing::FaultProxy>(registry_port));
    ASSERT_TRUE(proxies.back()->Start().ok());
    ASSERT_EQ(
        cluster.StartServer({"--registry=127.0.0.1:" + std::to_string(proxies.back()->port())}), i)
        << cluster.LogTail();
  }
  auto g = cluster.WaitForMaster(0, seconds(10));
  ASSERT_TRUE(g.has_value()) << cluster.LogTail();
  ASSERT_TRUE(cluster.WaitForInSync(g->master, kReplicas - 1, seconds(10))) << cluster.LogTail();
  const int cut = cluster.IndexOf(g->master);
  ASSERT_GE(cut, 0);

  Writer writer(cluster.RegistryAddress(), 2);
  std::this_thread::sleep_for(milliseconds(800));
  const SteadyTime partitioned = std::chrono::steady_clock::now();
  proxies[static_cast<size_t>(cut)]->SetMode(fulcrum::testing::FaultProxy::Mode::kBlackhole);
  auto next = cluster.WaitForMaster(g->epoch, seconds(15));
  ASSERT_TRUE(next.has_value()) << "no promotion after the partition\n" << cluster.LogTail();
  EXPECT_NE(next->master, g->master);
  // The cut-off master's lease (600 ms after its last heartbeat was sent) has run out by the
  // time the registry promotes (800 ms after the last one arrived): it admits no write.
  const DirectPut direct = PutDirectly(g->master, "to-the-cut-off-master");
  EXPECT_FALSE(direct.ok) << "the cut-off master acknowledged a write after its lease";
  std::optional<SteadyTime> first;
  const auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (!(first = writer.FirstAckStartedAfter(partitioned)) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(first.has_value()) << "no write acknowledged after the partition\n"
                                 << cluster.LogTail();
  std::this_thread::sleep_for(milliseconds(500));
  writer.Stop();
  // The cut-off master may acknowledge writes until its lease runs out (its slaves still
  // reach it); the gap is from then until the new master takes writes.
  std::printf(
      "partitioned master replaced: longest time without an acknowledged write after "
      "the cut %.0f ms; %llu writes acknowledged, %llu failed\n",
      LongestWriteGapMs(writer.Acked(), partitioned),
      static_cast<unsigned long long>(writer.acked()),
      static_cast<unsigned long long>(writer.failed()));
  const std::vector<std::string> missing = MissingKeys(cluster.RegistryAddress(), writer.Acked());
  EXPECT_TRUE(missing.empty()) << missing.size()
                               << " acknowledged writes lost, first: " << missing.front() << "\n"
                               << cluster.LogTail();

  proxies[static_cast<size_t>(cut)]->SetMode(fulcrum::testing::FaultProxy::Mode::kPass);
  EXPECT_TRUE(cluster.WaitForInSync(next->master, kReplicas - 1, seconds(15)))
      << "the healed master did not rejoin as a slave\n"
      << cluster.LogTail();
  auto status = cluster.Status(g->master);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->role, "slave");
}

TEST(KvStoreServerFlagsTest, BadFlagsAreRefusedWithAClearError) {
  registry_test::CommandResult r = registry_test::RunCommand({KVSTORE_SERVER_BIN}, seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--registry is required"), std::string::npos) << r.err;
  r = registry_test::RunCommand(
      {KVSTORE_SERVER_BIN, "--registry=127.0.0.1:1", "--min_insync_replicas=-1"}, seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--min_insync_replicas"), std::string::npos) << r.err;
  r = registry_test::RunCommand({KVSTORE_SERVER_BIN, "--registry=127.0.0.1:1", "--group="},
                                seconds(20));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--group must not be empty"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kvstore::test
