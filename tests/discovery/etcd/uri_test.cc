// etcd:// URI parsing: what resolvers and registrars accept, and the message for what they
// refuse.
#include <gtest/gtest.h>

#include <fstream>

#include "etcd_registrar.h"
#include "etcd_uri.h"
#include "fulcrum/discovery/etcd.h"
#include "fulcrum/registrar.h"
#include "fulcrum/resolver.h"

namespace fulcrum::etcd {
namespace {

TEST(EtcdUriTest, ResolverWithOneEndpointAndDefaults) {
  StatusOr<EtcdUri> uri = ParseEtcdUri("127.0.0.1:2379/calc", EtcdUriKind::kResolver);
  ASSERT_TRUE(uri.ok()) << uri.status();
  ASSERT_EQ(uri->endpoints.size(), 1u);
  EXPECT_EQ(uri->endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(uri->endpoints[0].port, 2379);
  EXPECT_EQ(uri->service, "calc");
  EXPECT_EQ(uri->prefix, "/fulcrum");
}

TEST(EtcdUriTest, ResolverWithSeveralEndpointsAndPrefix) {
  StatusOr<EtcdUri> uri = ParseEtcdUri(
      "10.0.0.1:2379,[::1]:2380,etcd.local:2381/calc?prefix=/team/a/", EtcdUriKind::kResolver);
  ASSERT_TRUE(uri.ok()) << uri.status();
  ASSERT_EQ(uri->endpoints.size(), 3u);
  EXPECT_EQ(uri->endpoints[1].host, "::1");
  EXPECT_EQ(uri->endpoints[1].ToString(), "[::1]:2380");
  EXPECT_EQ(uri->endpoints[2].ToString(), "etcd.local:2381");
  EXPECT_EQ(uri->prefix, "/team/a");  // trailing '/' dropped
}

TEST(EtcdUriTest, RegistrarWithTtl) {
  StatusOr<EtcdUri> uri =
      ParseEtcdUri("127.0.0.1:2379?prefix=/x&ttl_s=10", EtcdUriKind::kRegistrar);
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->ttl_s, 10);
  EXPECT_EQ(uri->prefix, "/x");
  EXPECT_TRUE(uri->service.empty());
  StatusOr<EtcdUri> defaults = ParseEtcdUri("127.0.0.1:2379", EtcdUriKind::kRegistrar);
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->ttl_s, 3);
}

struct BadUri {
  const char* rest;
  EtcdUriKind kind;
  const char* says;
};

class EtcdBadUriTest : public ::testing::TestWithParam<BadUri> {};

TEST_P(EtcdBadUriTest, IsInvalidArgumentNamingTheUri) {
  const BadUri& bad = GetParam();
  StatusOr<EtcdUri> uri = ParseEtcdUri(bad.rest, bad.kind);
  ASSERT_FALSE(uri.ok()) << bad.rest;
  EXPECT_EQ(uri.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(uri.status().message().find(std::string("etcd://") + bad.rest), std::string::npos)
      << uri.status();
  EXPECT_NE(uri.status().message().find(bad.says), std::string::npos) << uri.status();
}

INSTANTIATE_TEST_SUITE_P(
    All, EtcdBadUriTest,
    ::testing::Values(
        BadUri{"/calc", EtcdUriKind::kResolver, "no etcd host:port"},
        BadUri{"", EtcdUriKind::kRegistrar, "no etcd host:port"},
        BadUri{"127.0.0.1:2379", EtcdUriKind::kResolver, "no service"},
        BadUri{"127.0.0.1:2379/", EtcdUriKind::kResolver, "no service"},
        BadUri{"127.0.0.1/calc", EtcdUriKind::kResolver, "bad etcd address"},
        BadUri{"127.0.0.1:99999/calc", EtcdUriKind::kResolver, "bad etcd address"},
        BadUri{"127.0.0.1:x/calc", EtcdUriKind::kResolver, "bad etcd address"},
        BadUri{"127.0.0.1:2379,/calc", EtcdUriKind::kResolver, "bad etcd address"},
        BadUri{"127.0.0.1:2379/a/b", EtcdUriKind::kResolver, "contains '/'"},
        BadUri{"127.0.0.1:2379/calc?foo=1", EtcdUriKind::kResolver, "unknown parameter 'foo'"},
        BadUri{"127.0.0.1:2379/calc?ttl_s=3", EtcdUriKind::kResolver, "unknown parameter 'ttl_s'"},
        BadUri{"127.0.0.1:2379/calc?prefix", EtcdUriKind::kResolver, "no '='"},
        BadUri{"127.0.0.1:2379/calc?prefix=x", EtcdUriKind::kResolver, "must start with '/'"},
        BadUri{"127.0.0.1:2379?ttl_s=0", EtcdUriKind::kRegistrar, "ttl_s"},
        BadUri{"127.0.0.1:2379?ttl_s=abc", EtcdUriKind::kRegistrar, "ttl_s"},
        BadUri{"127.0.0.1:2379?ttl_s=5s", EtcdUriKind::kRegistrar, "ttl_s"},
        BadUri{"127.0.0.1:2379/calc", EtcdUriKind::kRegistrar, "names no service"}));

TEST(EtcdDiscoveryTest, SchemeCreatesResolversAndRegistrarsAndRefusesBadUris) {
  ASSERT_TRUE(RegisterEtcdDiscovery().ok());
  ASSERT_TRUE(RegisterEtcdDiscovery().ok());  // idempotent
  EXPECT_TRUE(CreateResolver("etcd://127.0.0.1:1/calc").ok());
  EXPECT_TRUE(CreateRegistrar("etcd://127.0.0.1:1?ttl_s=5").ok());
  auto bad = CreateResolver("etcd://127.0.0.1:1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("etcd://127.0.0.1:1"), std::string::npos);
}

TEST(EtcdRegistrarTest, RefusesAGroupNameThatWouldBreakTheKeyLayoutWithoutTalkingToEtcd) {
  for (const char* group : {"g/1", "~leader"}) {
    EtcdRegistrar registrar({.endpoints = {{"127.0.0.1", 1}}});
    ServiceInstance instance{.service = "kv", .host = "127.0.0.1", .port = 9000, .group = group};
    Status s = registrar.Register(instance, {});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << group;
    EXPECT_NE(s.message().find("bad group name"), std::string::npos) << s;
    EXPECT_FALSE(registrar.registered());
    EXPECT_TRUE(registrar.Deregister().ok());
  }
}

TEST(EtcdUriTest, CredentialsComeFromAPasswordFile) {
  const std::string path = ::testing::TempDir() + "/etcd_uri_test.pw";
  std::ofstream(path) << "pa ss\n";
  StatusOr<EtcdUri> uri =
      ParseEtcdUri("127.0.0.1:2379/calc?user=svc&password_file=" + path, EtcdUriKind::kResolver);
  ASSERT_TRUE(uri.ok()) << uri.status();
  ASSERT_TRUE(uri->credentials.has_value());
  EXPECT_EQ(uri->credentials->user, "svc");
  EXPECT_EQ(uri->credentials->password, "pa ss");  // one trailing newline dropped
  EXPECT_FALSE(ParseEtcdUri("127.0.0.1:2379/calc", EtcdUriKind::kResolver)->credentials);

  auto error = [](const std::string& rest) {
    StatusOr<EtcdUri> u = ParseEtcdUri(rest, EtcdUriKind::kRegistrar);
    return u.ok() ? std::string("accepted") : u.status().message();
  };
  EXPECT_NE(error("127.0.0.1:2379?user=svc").find("both user and password_file"),
            std::string::npos);
  EXPECT_NE(error("127.0.0.1:2379?password_file=" + path).find("both user and password_file"),
            std::string::npos);
  EXPECT_NE(error("127.0.0.1:2379?user=svc&password_file=/nonexistent/pw")
                .find("cannot open password_file /nonexistent/pw"),
            std::string::npos);
  std::ofstream(path, std::ios::trunc) << "\n";
  EXPECT_NE(error("127.0.0.1:2379?user=svc&password_file=" + path).find("is empty"),
            std::string::npos);
}

TEST(EtcdUriTest, TlsFilesMustExistAndComeInTheirPairs) {
  const std::string path = ::testing::TempDir() + "/etcd_uri_test.pem";
  std::ofstream(path) << "x";
  StatusOr<EtcdUri> uri = ParseEtcdUri("127.0.0.1:2379/calc?tls_ca_file=" + path +
                                           "&tls_cert_file=" + path + "&tls_key_file=" + path,
                                       EtcdUriKind::kResolver);
  ASSERT_TRUE(uri.ok()) << uri.status();
  ASSERT_TRUE(uri->tls.has_value());
  EXPECT_EQ(uri->tls->ca_file, path);
  EXPECT_EQ(uri->tls->key_file, path);
  EXPECT_FALSE(ParseEtcdUri("127.0.0.1:2379/calc", EtcdUriKind::kResolver)->tls);
  auto error = [](const std::string& rest) {
    StatusOr<EtcdUri> u = ParseEtcdUri(rest, EtcdUriKind::kRegistrar);
    return u.ok() ? std::string("accepted") : u.status().message();
  };
  EXPECT_NE(error("127.0.0.1:2379?tls_ca_file=/nonexistent.pem").find("cannot open tls_ca_file"),
            std::string::npos);
  EXPECT_NE(error("127.0.0.1:2379?tls_cert_file=" + path + "&tls_key_file=" + path)
                .find("needs tls_ca_file"),
            std::string::npos);
  EXPECT_NE(error("127.0.0.1:2379?tls_ca_file=" + path + "&tls_cert_file=" + path)
                .find("both tls_cert_file and tls_key_file"),
            std::string::npos);
}

}  // namespace
}  // namespace fulcrum::etcd
