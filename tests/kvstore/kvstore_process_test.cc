// The kvstore as real processes on 127.0.0.1: fulcrum-registry, three kvstore_server
// replicas (min_insync_replicas 1), and clients through the fulcrum:// resolver. Masters are
// SIGKILLed and SIGSTOPped, the registry is SIGKILLed, a switchover runs under load; after
// each, every acknowledged write must be readable from the master.
#include <signal.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/framed_transport.h"
#include "fulcrum/role.h"
#include "kv_cluster.h"

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

class KvStoreProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
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
    const std::vector<std::string> missing = MissingKeys(cluster_.RegistryAddress(), acks);
    EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acks.size()
                                 << " acknowledged writes lost, first: " << missing.front() << "\n"
                                 << cluster_.LogTail();
  }

  KvCluster cluster_;
  GroupView group_;
};

// (a) SIGKILL the master at random moments under write load; restart it as a slave each time.
TEST_F(KvStoreProcessTest, NoAcknowledgedWriteIsLostWhenMastersAreKilled) {
  const int kills = KillsFromEnv(20);
  std::mt19937 random(20261123);
  Writer writer(cluster_.RegistryAddress(), 2);
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
TEST_F(KvStoreProcessTest, ZombieMasterAcceptsNoWriteAndRedirects) {
  Writer writer(cluster_.RegistryAddress(), 2);
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
  rpc::fulcrum_gen::KvStoreBalancedClient client(
      "fulcrum://" + cluster_.RegistryAddress() + "/KvStore",
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
TEST_F(KvStoreProcessTest, RegistryRestartKeepsOneMasterAndEpochsOnlyGrow) {
  Writer writer(cluster_.RegistryAddress(), 2);
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
TEST_F(KvStoreProcessTest, PlannedSwitchoverUnderLoadFailsNoCall) {
  Writer writer(cluster_.RegistryAddress(), 4, milliseconds(1));
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
    EXPECT_EQ(g->epoch, group_.epoch + 1);
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

// The CLI from the README, against the cluster.
TEST_F(KvStoreProcessTest, ClientCommandLine) {
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {KVSTORE_CLIENT_BIN,
                                     "--registry=" + cluster_.RegistryAddress()};
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
