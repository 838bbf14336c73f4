// The etcd discovery library's wire formats without an etcd: base64, key layout, the instance
// value's round trip, and parsing of range, watch and lease answers, garbage included.
#include <gtest/gtest.h>

#include "etcd_codec.h"
#include "etcd_resolver.h"

namespace fulcrum::etcd {
namespace {

TEST(EtcdCodecTest, Base64RoundTripsEveryLengthAndByte) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("/f/a"), "L2YvYQ==");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n <= all.size(); n += 37) {
    const std::string in = all.substr(0, n);
    StatusOr<std::string> out = Base64Decode(Base64Encode(in));
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(*out, in);
  }
}

TEST(EtcdCodecTest, Base64RejectsGarbage) {
  for (const char* bad : {"Zg=", "Z===", "Zm9v!A==", "=Zm9", "Zg==Zm9v", "Zm 9"}) {
    EXPECT_FALSE(Base64Decode(bad).ok()) << bad;
  }
}

TEST(EtcdCodecTest, KeyLayoutAndPrefixRangeEnd) {
  EXPECT_EQ(ServicePrefix("/fulcrum", "calc"), "/fulcrum/services/calc/");
  EXPECT_EQ(InstanceKey("/fulcrum", "calc", "10.0.0.1:9090"),
            "/fulcrum/services/calc/10.0.0.1:9090");
  EXPECT_EQ(PrefixRangeEnd("/a/"), "/a0");
  EXPECT_EQ(PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixRangeEnd(std::string("\xff", 1)), std::string(1, '\0'));
}

TEST(EtcdCodecTest, InstanceValueRoundTrips) {
  ServiceInstance in{.service = "calc",
                     .host = "10.0.0.7",
                     .port = 9090,
                     .weight = 3,
                     .zone = "eu-1",
                     .metadata = {{"id", "a"}, {"v", "2"}}};
  StatusOr<Endpoint> e = DecodeEndpoint(EncodeInstance(in, 0xfedcba9876543210u));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->incarnation, 0xfedcba9876543210u);
  EXPECT_EQ(e->host, "10.0.0.7");
  EXPECT_EQ(e->port, 9090);
  EXPECT_EQ(e->weight, 3u);
  EXPECT_EQ(e->zone, "eu-1");
  EXPECT_EQ(e->tags, in.metadata);
  EXPECT_EQ(e->role, InstanceRole::kNone);
}

TEST(EtcdCodecTest, MinimalValueDecodesWithDefaults) {
  StatusOr<Endpoint> e = DecodeEndpoint(R"({"host":"h","port":1})");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->weight, 1u);
  EXPECT_TRUE(e->zone.empty());
  EXPECT_EQ(e->incarnation, 0u) << "older registrars write none: not known";
}

TEST(EtcdCodecTest, BadValuesAreRefused) {
  for (const char* bad :
       {"", "garbage", "[1,2]", "{}", R"({"host":"h"})", R"({"port":80})",
        R"({"host":"","port":80})", R"({"host":7,"port":80})", R"({"host":"h","port":0})",
        R"({"host":"h","port":70000})", R"({"host":"h","port":"80"})",
        R"({"host":"h","port":80,"weight":-1})", R"({"host":"h","port":80,"zone":1})",
        R"({"host":"h","port":80,"metadata":[1]})", R"({"host":"h","port":80,"metadata":{"a":1}})",
        R"({"host":"h","port":80,"incarnation":-1})", R"({"host":"h","port":80,"incarnation":"7"})",
        R"({"host":"h","port":80)"}) {
    StatusOr<Endpoint> e = DecodeEndpoint(bad);
    EXPECT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// Copied from a real etcd 3.4.23's answers, keys and values base64.
constexpr char kRange[] =
    R"({"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"},)"
    R"("kvs":[{"key":"L2YvYQ==","create_revision":"2","mod_revision":"5","version":"1",)"
    R"("value":"eA=="},{"key":"L2YvYg==","create_revision":"6","mod_revision":"6",)"
    R"("version":"1"}],"count":"2"})";

TEST(EtcdCodecTest, ParsesRangeAnswers) {
  StatusOr<RangeResult> r = ParseRangeResponse(kRange);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, 7);
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, "/f/a");
  EXPECT_EQ(r->kvs[0].value, "x");
  EXPECT_EQ(r->kvs[0].mod_revision, 5);
  EXPECT_EQ(r->kvs[1].value, "");  // empty values are left out
  StatusOr<RangeResult> empty =
      ParseRangeResponse(R"({"header":{"revision":"3"}})");  // no kvs at all
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->kvs.empty());
}

TEST(EtcdCodecTest, RangeGarbageIsAnError) {
  for (const char* bad :
       {"", "nope", "[]", R"({"kvs":[]})", R"({"header":{"revision":"x"}})",
        R"({"header":{"revision":"3"},"kvs":{}})", R"({"header":{"revision":"3"},"kvs":[1]})",
        R"({"header":{"revision":"3"},"kvs":[{"key":"!!"}]})",
        R"({"header":{"revision":"3"},"kvs":[{"value":"eA=="}]})"}) {
    EXPECT_FALSE(ParseRangeResponse(bad).ok()) << bad;
  }
}

TEST(EtcdCodecTest, ParsesWatchMessages) {
  StatusOr<WatchResponse> created =
      ParseWatchResponse(R"({"result":{"header":{"revision":"3"},"created":true}})");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_TRUE(created->events.empty());

  StatusOr<WatchResponse> events = ParseWatchResponse(
      R"({"result":{"header":{"revision":"3"},"events":[{"kv":{"key":"L2YvYQ==",)"
      R"("create_revision":"2","mod_revision":"2","version":"1","value":"eA=="}},)"
      R"({"type":"DELETE","kv":{"key":"L2YvYQ==","mod_revision":"3"}}]}})");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events.size(), 2u);
  EXPECT_FALSE(events->events[0].deleted);  // a PUT has no "type"
  EXPECT_EQ(events->events[0].kv.value, "x");
  EXPECT_TRUE(events->events[1].deleted);
  EXPECT_EQ(events->events[1].kv.mod_revision, 3);

  StatusOr<WatchResponse> compacted = ParseWatchResponse(
      R"({"result":{"header":{"raft_term":"2"},"canceled":true,"compact_revision":"4"}})");
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_TRUE(compacted->canceled);
  EXPECT_EQ(compacted->compact_revision, 4);

  StatusOr<WatchResponse> error =
      ParseWatchResponse(R"({"error":{"grpc_code":11,"message":"mvcc: required revision )"
                         R"(has been compacted"}})");
  ASSERT_FALSE(error.ok());
  EXPECT_EQ(error.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(error.status().message().find("compacted"), std::string::npos);
}

TEST(EtcdCodecTest, WatchGarbageIsAnError) {
  for (const char* bad :
       {"", "{", "null", R"({"header":{}})", R"({"result":5})",
        R"({"result":{"events":[{"type":"PUT"}]}})",
        R"({"result":{"events":[{"type":"TOUCH","kv":{"key":"eA=="}}]}})",
        R"({"result":{"events":{}}})", R"({"result":{"compact_revision":"x"}})"}) {
    EXPECT_FALSE(ParseWatchResponse(bad).ok()) << bad;
  }
}

TEST(EtcdCodecTest, ParsesLeaseAnswers) {
  StatusOr<LeaseResult> grant =
      ParseLeaseResponse(R"({"header":{"revision":"1"},"ID":"4111120352356891654","TTL":"2"})");
  ASSERT_TRUE(grant.ok()) << grant.status();
  EXPECT_EQ(grant->id, 4111120352356891654);
  EXPECT_EQ(grant->ttl_s, 2);
  StatusOr<LeaseResult> alive =
      ParseLeaseResponse(R"({"result":{"header":{},"ID":"123","TTL":"3"}})");
  ASSERT_TRUE(alive.ok()) << alive.status();
  EXPECT_EQ(alive->ttl_s, 3);
  StatusOr<LeaseResult> gone = ParseLeaseResponse(R"({"result":{"header":{},"ID":"123"}})");
  ASSERT_TRUE(gone.ok()) << gone.status();
  EXPECT_EQ(gone->ttl_s, 0);
  EXPECT_FALSE(ParseLeaseResponse("<html>").ok());
  EXPECT_FALSE(ParseLeaseResponse(R"({"ID":"x"})").ok());
}

TEST(EtcdCodecTest, ErrorMessageTakesEtcdsMessage) {
  EXPECT_EQ(ErrorMessage(R"({"error":"e","message":"lease not found","code":5})"),
            "lease not found");
  EXPECT_EQ(ErrorMessage(R"({"error":{"message":"inner"}})"), "inner");
  EXPECT_EQ(ErrorMessage("plain text"), "plain text");
}

TEST(JsonObjectSplitterTest, CutsObjectsWhateverTheChunking) {
  const std::string stream =
      R"({"result":{"a":"}{\"x"}}
{"result":{"b":[1,{"c":2}]}}
)";
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    JsonObjectSplitter splitter;
    std::vector<std::string> objects;
    for (size_t i = 0; i < stream.size(); i += piece) {
      for (std::string& o : splitter.Feed(std::string_view(stream).substr(i, piece))) {
        objects.push_back(std::move(o));
      }
    }
    ASSERT_EQ(objects.size(), 2u) << "piece " << piece;
    EXPECT_EQ(objects[0], R"({"result":{"a":"}{\"x"}})");
    EXPECT_EQ(objects[1], R"({"result":{"b":[1,{"c":2}]}})");
    EXPECT_EQ(splitter.pending(), 0u);
  }
}

TEST(JsonObjectSplitterTest, HoldsBackAnUnfinishedObject) {
  JsonObjectSplitter splitter;
  EXPECT_TRUE(splitter.Feed("\n\n{\"a\":").empty());
  EXPECT_GT(splitter.pending(), 0u);
  std::vector<std::string> done = splitter.Feed("1}garbage{}");
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0], "{\"a\":1}");
  EXPECT_EQ(done[1], "{}");
}

TEST(InstanceTableTest, SkipsGarbageAndGarbageOverAGoodValueRemovesIt) {
  InstanceTable table;
  EXPECT_TRUE(table.Put("/p/a", R"({"host":"h","port":1})"));
  EXPECT_TRUE(table.Put("/p/b", R"({"host":"h","port":2,"weight":5})"));
  EXPECT_FALSE(table.Put("/p/c", "not json"));
  EXPECT_EQ(table.size(), 2u);
  EXPECT_FALSE(table.Put("/p/a", R"({"host":"h"})"));
  EndpointSet set = table.Snapshot(42);
  EXPECT_EQ(set.version, 42u);
  ASSERT_EQ(set.endpoints.size(), 1u);
  EXPECT_EQ(set.endpoints[0].port, 2);
  EXPECT_EQ(set.endpoints[0].weight, 5u);
  table.Delete("/p/b");
  EXPECT_TRUE(table.Snapshot(43).endpoints.empty());
}

}  // namespace
}  // namespace fulcrum::etcd
