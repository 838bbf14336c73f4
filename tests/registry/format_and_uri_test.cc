#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ctl/ctl_format.h"
#include "ctl/etcd_view.h"
#include "fulcrum_resolver.h"
#include "fulcrum_uri.h"

namespace fulcrum::registry {

using registry_client::FulcrumUri;
using registry_client::ParseFulcrumUri;
using registry_client::ToEndpointSet;

namespace {

thrift::ServiceSnapshot Snapshot() {
  thrift::ServiceSnapshot snap;
  snap.service_name = "calc";
  snap.version = 42;
  thrift::InstanceState a;
  a.instance.host = "127.0.0.1";
  a.instance.port = 9001;
  a.instance.weight = 1;
  a.instance.zone = "z1";
  a.health = thrift::Health::UP;
  a.effective_weight = 5;
  a.admin_weight_set = true;
  a.last_heartbeat_age_ms = 250;
  a.load.in_flight = 3;
  a.load.calls_per_second = 120.25;
  thrift::InstanceState b = a;
  b.instance.port = 9002;
  b.health = thrift::Health::DOWN;
  b.effective_weight = 1;
  b.admin_weight_set = false;
  b.drained = true;
  b.last_heartbeat_age_ms = 12'500;
  thrift::InstanceState c = a;
  c.instance.port = 9003;
  c.admin_weight_set = false;
  c.effective_weight = 2;
  snap.instances = {a, b, c};
  return snap;
}

TEST(CtlFormatTest, InstancesTable) {
  EXPECT_EQ(FormatInstances(Snapshot(), false),
            "service calc (version 42)\n"
            "ADDRESS         HEALTH  WEIGHT     ZONE  DRAINED  LAST-HB  IN-FLIGHT  CALLS/S\n"
            "127.0.0.1:9001  UP      5 (admin)  z1    no       0.2s     3          120.2\n"
            "127.0.0.1:9002  DOWN    1          z1    yes      12s      3          120.2\n"
            "127.0.0.1:9003  UP      2          z1    no       0.2s     3          120.2\n");
}

TEST(CtlFormatTest, InstancesJson) {
  const nlohmann::json j = nlohmann::json::parse(FormatInstances(Snapshot(), true));
  EXPECT_EQ(j["service"], "calc");
  EXPECT_EQ(j["version"], 42);
  ASSERT_EQ(j["instances"].size(), 3u);
  EXPECT_EQ(j["instances"][0]["address"], "127.0.0.1:9001");
  EXPECT_EQ(j["instances"][0]["weight"], 5);
  EXPECT_EQ(j["instances"][0]["admin_weight_set"], true);
  EXPECT_EQ(j["instances"][1]["health"], "DOWN");
  EXPECT_EQ(j["instances"][1]["drained"], true);
  EXPECT_EQ(j["instances"][1]["last_heartbeat_age_ms"], 12500);
  EXPECT_EQ(j["instances"][0]["in_flight"], 3);
}

TEST(CtlFormatTest, AllInstances) {
  thrift::ServiceSnapshot other = Snapshot();
  other.service_name = "kv";
  const std::string table = FormatAllInstances({Snapshot(), other}, false);
  EXPECT_EQ(table, FormatInstances(Snapshot(), false) + "\n" + FormatInstances(other, false));
  const nlohmann::json j = nlohmann::json::parse(FormatAllInstances({Snapshot(), other}, true));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[1]["service"], "kv");
  EXPECT_EQ(j[1]["instances"].size(), 3u);
  EXPECT_EQ(FormatAllInstances({}, false), "no services registered\n");
}

TEST(CtlFormatTest, ServicesTableAndJson) {
  thrift::ServiceSummary s;
  s.service_name = "calc";
  s.version = 7;
  s.instances = 3;
  s.up = 2;
  s.drained = 1;
  EXPECT_EQ(FormatServices({s}, false),
            "SERVICE  INSTANCES  UP  DRAINED\n"
            "calc     3          2   1\n");
  const nlohmann::json j = nlohmann::json::parse(FormatServices({s}, true));
  EXPECT_EQ(j[0]["service"], "calc");
  EXPECT_EQ(j[0]["up"], 2);
  EXPECT_EQ(FormatServices({}, false), "no services registered\n");
}

TEST(ResolverSnapshotTest, KeepsUpUndrainedWithEffectiveWeights) {
  EndpointSet set = ToEndpointSet(Snapshot());
  EXPECT_EQ(set.version, 42u);
  ASSERT_EQ(set.endpoints.size(), 2u);
  EXPECT_EQ(set.endpoints[0].Address(), "127.0.0.1:9001");
  EXPECT_EQ(set.endpoints[0].weight, 5u);
  EXPECT_EQ(set.endpoints[0].zone, "z1");
  EXPECT_EQ(set.endpoints[1].Address(), "127.0.0.1:9003");
  EXPECT_EQ(set.endpoints[1].weight, 2u);
}

thrift::ServiceSnapshot MasterSlaveSnapshot() {
  thrift::ServiceSnapshot snap = Snapshot();
  snap.service_name = "kv";
  snap.instances[0].group = "g1";
  snap.instances[0].role = thrift::Role::MASTER;
  snap.instances[0].epoch = 4;
  snap.instances[0].replication_position = 120;
  snap.instances[2].group = "g1";
  snap.instances[2].role = thrift::Role::SLAVE;
  snap.instances[2].epoch = 4;
  snap.instances[2].replication_position = 118;
  snap.instances[2].priority = 3;
  thrift::GroupState g;
  g.service_name = "kv";
  g.group = "g1";
  g.epoch = 4;
  g.master_address = "127.0.0.1:9001";
  g.switchover_target = "127.0.0.1:9003";
  snap.groups = {g};
  return snap;
}

TEST(CtlFormatTest, MasterSlaveTableShowsRolesEpochsPositionsAndGroups) {
  EXPECT_EQ(FormatInstances(MasterSlaveSnapshot(), false),
            "service kv (version 42)\n"
            "ADDRESS         HEALTH  WEIGHT     ZONE  DRAINED  LAST-HB  IN-FLIGHT  CALLS/S  GROUP  "
            "ROLE    EPOCH  POSITION\n"
            "127.0.0.1:9001  UP      5 (admin)  z1    no       0.2s     3          120.2    g1     "
            "MASTER  4      120\n"
            "127.0.0.1:9002  DOWN    1          z1    yes      12s      3          120.2    -      "
            "-       -      -\n"
            "127.0.0.1:9003  UP      2          z1    no       0.2s     3          120.2    g1     "
            "SLAVE   4      118\n"
            "\n"
            "GROUP  EPOCH  MASTER          SWITCHOVER-TO   COMMIT-FLOOR\n"
            "g1     4      127.0.0.1:9001  127.0.0.1:9003  0\n");
}

TEST(CtlFormatTest, AStalledGroupSaysWhy) {
  thrift::ServiceSnapshot snap = MasterSlaveSnapshot();
  snap.groups[0].master_address = "";
  snap.groups[0].switchover_target = "";
  snap.groups[0].commit_floor = 120;
  snap.groups[0].stalled = "every slave is below the commit floor";
  const std::string out = FormatInstances(snap, false);
  EXPECT_NE(out.find("g1     4      (none)  -              120\n"
                     "group g1 has no master: every slave is below the commit floor\n"),
            std::string::npos)
      << out;
  const nlohmann::json j = nlohmann::json::parse(FormatInstances(snap, true));
  EXPECT_EQ(j["groups"][0]["commit_floor"], 120);
  EXPECT_EQ(j["groups"][0]["stalled"], "every slave is below the commit floor");
}

TEST(CtlFormatTest, MasterSlaveJson) {
  const nlohmann::json j = nlohmann::json::parse(FormatInstances(MasterSlaveSnapshot(), true));
  EXPECT_EQ(j["instances"][0]["role"], "MASTER");
  EXPECT_EQ(j["instances"][0]["group"], "g1");
  EXPECT_EQ(j["instances"][0]["epoch"], 4);
  EXPECT_EQ(j["instances"][0]["replication_position"], 120);
  EXPECT_EQ(j["instances"][1]["role"], "NONE");
  EXPECT_EQ(j["instances"][2]["role"], "SLAVE");
  EXPECT_EQ(j["instances"][2]["priority"], 3);
  ASSERT_EQ(j["groups"].size(), 1u);
  EXPECT_EQ(j["groups"][0]["group"], "g1");
  EXPECT_EQ(j["groups"][0]["epoch"], 4);
  EXPECT_EQ(j["groups"][0]["master"], "127.0.0.1:9001");
  EXPECT_EQ(j["groups"][0]["switchover_target"], "127.0.0.1:9003");

  thrift::GroupState done = MasterSlaveSnapshot().groups[0];
  done.master_address = "127.0.0.1:9003";
  done.epoch = 5;
  done.switchover_target = "";
  EXPECT_EQ(FormatPromoted(done, false),
            "promoted kv/127.0.0.1:9003: master of group g1, epoch 5\n");
  EXPECT_EQ(nlohmann::json::parse(FormatPromoted(done, true))["epoch"], 5);
}

TEST(ResolverSnapshotTest, CarriesGroupRoleAndEpoch) {
  EndpointSet set = ToEndpointSet(MasterSlaveSnapshot());
  ASSERT_EQ(set.endpoints.size(), 2u);
  EXPECT_EQ(set.endpoints[0].group, "g1");
  EXPECT_EQ(set.endpoints[0].role, InstanceRole::kMaster);
  EXPECT_EQ(set.endpoints[0].epoch, 4);
  EXPECT_EQ(set.endpoints[1].role, InstanceRole::kSlave);
  EXPECT_EQ(set.endpoints[1].epoch, 4);
  EndpointSet stateless = ToEndpointSet(Snapshot());
  EXPECT_EQ(stateless.endpoints[0].role, InstanceRole::kNone);
  EXPECT_EQ(stateless.endpoints[0].group, "");
}

TEST(FulcrumUriTest, Parses) {
  StatusOr<FulcrumUri> uri =
      ParseFulcrumUri("127.0.0.1:7000/calc?token_file=/etc/tok&tls_ca_file=/etc/ca.pem");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->host, "127.0.0.1");
  EXPECT_EQ(uri->port, 7000);
  EXPECT_EQ(uri->service, "calc");
  EXPECT_EQ(uri->token_file, "/etc/tok");
  EXPECT_EQ(uri->tls_ca_file, "/etc/ca.pem");

  uri = ParseFulcrumUri("[::1]:7000");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->host, "::1");
  EXPECT_EQ(uri->service, "");
}

TEST(FulcrumUriTest, RejectsMalformed) {
  EXPECT_EQ(ParseFulcrumUri("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFulcrumUri("host").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFulcrumUri("host:0/calc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFulcrumUri("host:99999/calc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseFulcrumUri("host:1/a/b").status().code(), StatusCode::kInvalidArgument);
  StatusOr<FulcrumUri> bad = ParseFulcrumUri("host:1/calc?colour=blue");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("unknown parameter 'colour'"), std::string::npos);
}

TEST(EtcdViewTest, AGroupOnEtcdShowsRolesEpochPositionsAndTheMaster) {
  using etcd::KeyValue;
  ServiceInstance a{.service = "kv", .host = "127.0.0.1", .port = 1, .group = "g1"};
  ServiceInstance b{.service = "kv", .host = "127.0.0.1", .port = 2, .group = "g1"};
  const std::vector<KeyValue> instances = {
      {.key = "/f/services/kv/127.0.0.1:1", .value = etcd::EncodeInstance(a, 11)},
      {.key = "/f/services/kv/127.0.0.1:2", .value = etcd::EncodeInstance(b, 22)},
      {.key = "/f/services/kv/~leader/g1",
       .value = etcd::EncodeLeader({.address = "127.0.0.1:2", .incarnation = 22}),
       .create_revision = 40}};
  const std::vector<KeyValue> groups = {
      {.key = "/f/groups/kv/g1/127.0.0.1:1",
       .value = etcd::EncodeCandidate({.position = 7, .priority = 3})},
      {.key = "/f/groups/kv/g1/127.0.0.1:2", .value = etcd::EncodeCandidate({.position = 9})},
      {.key = "/f/groups/kv/g1/~commit", .value = etcd::EncodeCandidate({.position = 6})}};
  thrift::ServiceSnapshot s = SnapshotFromEtcd("kv", 50, instances, groups);
  EXPECT_EQ(s.version, 50);
  ASSERT_EQ(s.instances.size(), 2u);
  EXPECT_EQ(s.instances[0].role, thrift::Role::SLAVE);
  EXPECT_EQ(s.instances[0].replication_position, 7);
  EXPECT_EQ(s.instances[0].priority, 3);
  EXPECT_EQ(s.instances[1].role, thrift::Role::MASTER);
  EXPECT_EQ(s.instances[1].epoch, 40);
  EXPECT_EQ(s.instances[1].health, thrift::Health::UP);
  ASSERT_EQ(s.groups.size(), 1u);
  EXPECT_EQ(s.groups[0].master_address, "127.0.0.1:2");
  EXPECT_EQ(s.groups[0].epoch, 40);
  EXPECT_EQ(s.groups[0].commit_floor, 6);
  const std::string table = FormatInstances(s, /*json=*/false);
  EXPECT_NE(table.find("MASTER"), std::string::npos) << table;
  EXPECT_EQ(Summaries({s})[0].up, 2);
}

}  // namespace
}  // namespace fulcrum::registry
