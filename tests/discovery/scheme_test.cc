// The discovery schemes Fulcrum ships (fulcrum://, etcd://) are registered by an explicit call.
// Until that call, a URI with the scheme fails with an error naming the library to link and
// the call to make; after it, the same URI works. Each test registers at most one scheme and
// checks the error first, so the order the tests run in does not matter.
#include <gtest/gtest.h>

#include <string>

#include "fulcrum/discovery/etcd.h"
#include "fulcrum/discovery/fulcrum.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"

namespace fulcrum {
namespace {

TEST(DiscoverySchemeTest, EtcdResolverAndRegistrarNameLibraryAndCallUntilRegistered) {
  auto resolver = CreateResolver("etcd://127.0.0.1:2379/calc");
  ASSERT_FALSE(resolver.ok());
  EXPECT_EQ(resolver.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = resolver.status().message();
  EXPECT_NE(m.find("unknown resolver scheme 'etcd' in 'etcd://127.0.0.1:2379/calc'"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(": link Fulcrum::etcd and call fulcrum::RegisterEtcdDiscovery() once at "
                   "startup (fulcrum/discovery/etcd.h)"),
            std::string::npos)
      << m;

  auto registrar = CreateRegistrar("etcd://127.0.0.1:2379?ttl_s=3");
  ASSERT_FALSE(registrar.ok());
  EXPECT_NE(registrar.status().message().find(
                "unknown registrar scheme 'etcd' in 'etcd://127.0.0.1:2379?ttl_s=3'"),
            std::string::npos)
      << registrar.status();
  EXPECT_NE(registrar.status().message().find(
                "link Fulcrum::etcd and call fulcrum::RegisterEtcdDiscovery()"),
            std::string::npos)
      << registrar.status();

  // What the message says is enough. Creating either contacts no etcd yet.
  ASSERT_TRUE(RegisterEtcdDiscovery().ok());
  EXPECT_TRUE(CreateResolver("etcd://127.0.0.1:2379/calc").ok());
  EXPECT_TRUE(CreateRegistrar("etcd://127.0.0.1:2379?ttl_s=3").ok());
}

TEST(DiscoverySchemeTest, FulcrumResolverAndRegistrarNameLibraryAndCallUntilRegistered) {
  auto resolver = CreateResolver("fulcrum://127.0.0.1:7000/calc");
  ASSERT_FALSE(resolver.ok());
  EXPECT_NE(resolver.status().message().find(
                "unknown resolver scheme 'fulcrum' in 'fulcrum://127.0.0.1:7000/calc'"),
            std::string::npos)
      << resolver.status();
  EXPECT_NE(resolver.status().message().find(
                ": link Fulcrum::fulcrum and call fulcrum::RegisterFulcrumDiscovery() once at "
                "startup (fulcrum/discovery/fulcrum.h)"),
            std::string::npos)
      << resolver.status();

  auto registrar = CreateRegistrar("fulcrum://127.0.0.1:7000");
  ASSERT_FALSE(registrar.ok());
  EXPECT_NE(registrar.status().message().find(
                "unknown registrar scheme 'fulcrum' in 'fulcrum://127.0.0.1:7000'"),
            std::string::npos)
      << registrar.status();
  EXPECT_NE(registrar.status().message().find(
                "link Fulcrum::fulcrum and call fulcrum::RegisterFulcrumDiscovery()"),
            std::string::npos)
      << registrar.status();

  ASSERT_TRUE(RegisterFulcrumDiscovery().ok());
  EXPECT_TRUE(CreateResolver("fulcrum://127.0.0.1:7000/calc").ok());
  EXPECT_TRUE(CreateRegistrar("fulcrum://127.0.0.1:7000").ok());
}

// A scheme Fulcrum does not ship gets no advice about libraries, only the known schemes.
TEST(DiscoverySchemeTest, ForeignSchemeListsKnownSchemesWithoutAdvice) {
  auto resolver = CreateResolver("zookeeper://10.0.0.1:2181/calc");
  ASSERT_FALSE(resolver.ok());
  const std::string& m = resolver.status().message();
  EXPECT_NE(m.find("unknown resolver scheme 'zookeeper' in 'zookeeper://10.0.0.1:2181/calc' "
                   "(known: "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("static"), std::string::npos) << m;
  EXPECT_EQ(m.find("link "), std::string::npos) << m;

  auto registrar = CreateRegistrar("zookeeper://10.0.0.1:2181");
  ASSERT_FALSE(registrar.ok());
  EXPECT_NE(registrar.status().message().find("unknown registrar scheme 'zookeeper'"),
            std::string::npos)
      << registrar.status();
  EXPECT_EQ(registrar.status().message().find("link "), std::string::npos) << registrar.status();
}

}  // namespace
}  // namespace fulcrum
