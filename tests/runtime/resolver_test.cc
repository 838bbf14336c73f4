#include "fulcrum/resolver.h"

#include <gtest/gtest.h>

namespace fulcrum {
namespace {

class Capture : public ResolverListener {
 public:
  void OnUpdate(EndpointSet endpoints) override { sets.push_back(std::move(endpoints)); }
  void OnError(const Status& status) override { errors.push_back(status); }
  std::vector<EndpointSet> sets;
  std::vector<Status> errors;
};

TEST(ParseHostPortTest, AcceptsHostnamesIpv4AndBracketedIpv6) {
  auto a = ParseHostPort("127.0.0.1:9090");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9090);
  auto b = ParseHostPort(" localhost:1 ");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->host, "localhost");
  auto c = ParseHostPort("[::1]:65535");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->Address(), "[::1]:65535");
}

TEST(ParseHostPortTest, RejectsMalformedWithAReason) {
  for (const char* bad : {"", "host", "host:", ":80", "host:0", "host:65536", "host:-1", "host:80x",
                          "host:+80", "::1:80", "[::1]80", "[::1"}) {
    auto r = ParseHostPort(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(ParseStaticEndpointsTest, ParsesWeightsZonesAndTags) {
  auto set = ParseStaticEndpoints("127.0.0.1:1;weight=3;zone=a, 127.0.0.1:2 ,h:3;shard=7;weight=0");
  ASSERT_TRUE(set.ok()) << set.status();
  ASSERT_EQ(set->endpoints.size(), 3u);
  EXPECT_EQ(set->endpoints[0].weight, 3u);
  EXPECT_EQ(set->endpoints[0].zone, "a");
  EXPECT_EQ(set->endpoints[1].weight, 1u);
  EXPECT_EQ(set->endpoints[1].port, 2);
  EXPECT_EQ(set->endpoints[2].weight, 0u);
  EXPECT_EQ(set->endpoints[2].tags.at("shard"), "7");
}

TEST(ParseStaticEndpointsTest, RejectsBadWeightsNamingTheEntry) {
  for (const char* bad : {"h:1;weight=-1", "h:1;weight=abc", "h:1;weight=", "h:1;weight=1.5",
                          "h:1;weight=99999999999", "h:1;weight"}) {
    auto r = ParseStaticEndpoints(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("h:1"), std::string::npos) << r.status();
  }
}

TEST(ParseStaticEndpointsTest, RejectsEmptyListsAndEntries) {
  EXPECT_FALSE(ParseStaticEndpoints("").ok());
  EXPECT_FALSE(ParseStaticEndpoints("h:1,,h:2").ok());
  EXPECT_FALSE(ParseStaticEndpoints("h:1,").ok());
}

TEST(SplitDiscoveryUriTest, SplitsAuthorityServiceAndParamsInOrder) {
  StatusOr<DiscoveryUri> u = SplitDiscoveryUri("10.0.0.1:2379,10.0.0.2:2379/calc?b=2&a=&b=3");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->authority, "10.0.0.1:2379,10.0.0.2:2379");
  EXPECT_EQ(u->service, "calc");
  using P = std::pair<std::string, std::string>;
  EXPECT_EQ(u->params, (std::vector<P>{{"b", "2"}, {"a", ""}, {"b", "3"}}));

  u = SplitDiscoveryUri("h:1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->authority, "h:1");
  EXPECT_TRUE(u->service.empty());
  EXPECT_TRUE(u->params.empty());

  u = SplitDiscoveryUri("/svc?k=/a/b");  // a '/' in a parameter is not a service's
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->authority, "");
  EXPECT_EQ(u->service, "svc");
  EXPECT_EQ(u->params, (std::vector<P>{{"k", "/a/b"}}));
}

TEST(SplitDiscoveryUriTest, RejectsNestedServicesAndParamsWithoutValues) {
  StatusOr<DiscoveryUri> u = SplitDiscoveryUri("h:1/a/b");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(u.status().message(), "service name contains '/'");
  u = SplitDiscoveryUri("h:1/a?x=1&flag");
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.status().message(), "query parameter 'flag' has no '='");
}

TEST(CreateResolverTest, StaticDeliversItsListOnStart) {
  auto r = CreateResolver("static://127.0.0.1:7,127.0.0.1:8");
  ASSERT_TRUE(r.ok()) << r.status();
  Capture capture;
  ASSERT_TRUE((*r)->Start(&capture).ok());
  ASSERT_EQ(capture.sets.size(), 1u);
  EXPECT_EQ(capture.sets[0].endpoints.size(), 2u);
  (*r)->Stop();
}

TEST(CreateResolverTest, UnknownSchemeAndNonUriAreClearErrors) {
  auto a = CreateResolver("zookeeper://h:1");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("unknown resolver scheme 'zookeeper'"), std::string::npos)
      << a.status();
  EXPECT_NE(a.status().message().find("static"), std::string::npos);
  auto b = CreateResolver("127.0.0.1:80");
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("not a URI"), std::string::npos);
  EXPECT_FALSE(CreateResolver("static://h:notaport").ok());
}

TEST(CreateResolverTest, CustomSchemesCanBeRegisteredOnce) {
  auto factory = [](std::string_view rest) -> StatusOr<std::unique_ptr<Resolver>> {
    return Status::Error(StatusCode::kUnavailable, "test scheme: " + std::string(rest));
  };
  // Schemes are process-wide and permanent: a scheme per run keeps --gtest_repeat working.
  static int runs = 0;
  const std::string scheme = "resolvertest" + std::to_string(runs++);
  ASSERT_TRUE(RegisterResolverScheme(scheme, factory).ok());
  EXPECT_FALSE(RegisterResolverScheme(scheme, factory).ok());
  auto r = CreateResolver(scheme + "://abc");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "test scheme: abc");
}

}  // namespace
}  // namespace fulcrum
