#include "server/auth.h"

#include <gtest/gtest.h>

#include "child_process.h"

namespace fulcrum::registry {
namespace {

using registry_test::TempDir;
using registry_test::WriteFile;

TEST(AuthTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("secret", "secret"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secreT"));
  EXPECT_FALSE(ConstantTimeEquals("secret", "secret2"));
  EXPECT_FALSE(ConstantTimeEquals("secret", ""));
  EXPECT_FALSE(ConstantTimeEquals("", "x"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(AuthTest, NoTokenFileMeansOpen) {
  StatusOr<TokenAuth> auth = TokenAuth::FromFile("");
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE(auth->enabled());
  EXPECT_TRUE(auth->Check(""));
  EXPECT_TRUE(auth->Check("anything"));
}

TEST(AuthTest, TokenFromFileTrimmedAndChecked) {
  TempDir dir;
  WriteFile(dir.path() + "/token", "  s3cret-token \n second line ignored\n");
  StatusOr<TokenAuth> auth = TokenAuth::FromFile(dir.path() + "/token");
  ASSERT_TRUE(auth.ok()) << auth.status();
  EXPECT_TRUE(auth->enabled());
  EXPECT_TRUE(auth->Check("s3cret-token"));
  EXPECT_FALSE(auth->Check(""));
  EXPECT_FALSE(auth->Check("s3cret-token "));
  EXPECT_FALSE(auth->Check("s3cret"));
}

TEST(AuthTest, MissingOrEmptyTokenFileIsAnErrorNotAnOpenRegistry) {
  TempDir dir;
  StatusOr<TokenAuth> missing = TokenAuth::FromFile(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read token file"), std::string::npos);
  WriteFile(dir.path() + "/empty", " \n");
  StatusOr<TokenAuth> empty = TokenAuth::FromFile(dir.path() + "/empty");
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("is empty"), std::string::npos);
}

}  // namespace
}  // namespace fulcrum::registry
