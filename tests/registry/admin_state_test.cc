#include "server/admin_state.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cstdio>
#include <filesystem>

#include "child_process.h"

namespace fulcrum::registry {
namespace {

using registry_test::ReadFile;
using registry_test::TempDir;
using registry_test::WriteFile;

AdminState Sample() {
  AdminState s;
  s.Set("calc", "127.0.0.1:9001", {5, false});
  s.Set("calc", "127.0.0.1:9002", {std::nullopt, true});
  s.Set("kv", "[::1]:7000", {0, true});
  return s;
}

TEST(AdminStateTest, SetEraseAndEmptyEntries) {
  AdminState s = Sample();
  EXPECT_EQ(s.size(), 3u);
  ASSERT_NE(s.Find("calc", "127.0.0.1:9001"), nullptr);
  EXPECT_EQ(*s.Find("calc", "127.0.0.1:9001")->weight, 5);
  s.Set("calc", "127.0.0.1:9001", {});  // empty entry: erased
  EXPECT_EQ(s.Find("calc", "127.0.0.1:9001"), nullptr);
  s.Erase("kv", "[::1]:7000");
  EXPECT_EQ(s.entries().count("kv"), 0u);
}

TEST(AdminStateFileTest, RoundTrip) {
  TempDir dir;
  AdminStateFile file(dir.path());
  ASSERT_TRUE(file.Save(Sample()).ok());
  StatusOr<AdminState> loaded = file.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded.value(), Sample());
  EXPECT_FALSE(std::filesystem::exists(file.path() + ".tmp"));

  AdminState changed = Sample();
  changed.Set("calc", "127.0.0.1:9001", {6, false});
  ASSERT_TRUE(file.Save(changed).ok());
  EXPECT_EQ(file.Load().value(), changed);
}

TEST(AdminStateFileTest, NoFileIsAnEmptyState) {
  TempDir dir;
  StatusOr<AdminState> loaded = AdminStateFile(dir.path()).Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), 0u);
}

TEST(AdminStateFileTest, FlippedByteIsDetected) {
  TempDir dir;
  AdminStateFile file(dir.path());
  ASSERT_TRUE(file.Save(Sample()).ok());
  std::string bytes = ReadFile(file.path());
  const size_t pos = bytes.find("9001");
  ASSERT_NE(pos, std::string::npos);
  bytes[pos] = '8';  // still valid JSON: only the checksum can tell
  WriteFile(file.path(), bytes);
  StatusOr<AdminState> loaded = file.Load();
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kInternal);
  EXPECT_NE(loaded.status().message().find("checksum mismatch"), std::string::npos)
      << loaded.status();
  EXPECT_NE(loaded.status().message().find(file.path()), std::string::npos);
}

TEST(AdminStateFileTest, TruncationIsDetectedAtEveryLength) {
  TempDir dir;
  AdminStateFile file(dir.path());
  ASSERT_TRUE(file.Save(Sample()).ok());
  const std::string whole = ReadFile(file.path());
  for (size_t len = 0; len < whole.size(); ++len) {
    WriteFile(file.path(), whole.substr(0, len));
    StatusOr<AdminState> loaded = file.Load();
    EXPECT_FALSE(loaded.ok()) << "a file cut to " << len << " bytes loaded";
    EXPECT_NE(loaded.status().message().find("corrupt"), std::string::npos) << loaded.status();
  }
  WriteFile(file.path(), whole + "x");
  EXPECT_NE(file.Load().status().message().find("appended"), std::string::npos);
}

TEST(AdminStateFileTest, ForeignOrNewerFilesAreRefused) {
  TempDir dir;
  AdminStateFile file(dir.path());
  WriteFile(file.path(), "hello world\n{}");
  EXPECT_NE(file.Load().status().message().find("not a fulcrum-registry state file"),
            std::string::npos);
  std::string bytes = EncodeAdminState(Sample());
  bytes.replace(bytes.find(" 2 "), 3, " 3 ");
  WriteFile(file.path(), bytes);
  EXPECT_NE(file.Load().status().message().find("format version 3"), std::string::npos)
      << file.Load().status();
  bytes.replace(bytes.find(" 3 "), 3, " 0 ");
  WriteFile(file.path(), bytes);
  EXPECT_NE(file.Load().status().message().find("format version 0"), std::string::npos)
      << file.Load().status();
}

// A header and checksum around any body, as a writer of that format version would make it.
std::string WithHeader(int version, const std::string& body) {
  boost::crc_32_type crc;
  crc.process_bytes(body.data(), body.size());
  char header[128];
  std::snprintf(header, sizeof(header), "fulcrum-registry-state %d %zu %08x\n", version,
                body.size(), crc.checksum());
  return header + body;
}

TEST(AdminStateFileTest, GroupsRoundTripAndVersionOneFilesStillLoad) {
  TempDir dir;
  AdminStateFile file(dir.path());
  AdminState state = Sample();
  state.SetGroup("kv", "g1", {3, "127.0.0.1:7001"});
  state.SetGroup("kv", "g2", {1, "127.0.0.1:7002"});
  ASSERT_TRUE(file.Save(state).ok());
  StatusOr<AdminState> loaded = file.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded.value(), state);
  EXPECT_EQ(*loaded->FindGroup("kv", "g1"), (GroupRecord{3, "127.0.0.1:7001"}));
  EXPECT_EQ(loaded->FindGroup("kv", "g3"), nullptr);

  // Written by the registry before master-slave groups existed.
  WriteFile(file.path(),
            WithHeader(1, R"({"instances": [{"service": "calc", "address": "127.0.0.1:9001",)"
                          R"( "drained": true, "weight": 4}]})"
                          "\n"));
  loaded = file.Load();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->size(), 1u);
  EXPECT_TRUE(loaded->Find("calc", "127.0.0.1:9001")->drained);
  EXPECT_EQ(*loaded->Find("calc", "127.0.0.1:9001")->weight, 4);
  EXPECT_TRUE(loaded->groups().empty());
}

TEST(AdminStateFileTest, BadGroupEntriesAreRefused) {
  TempDir dir;
  AdminStateFile file(dir.path());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"instances": []})", "does not parse"},  // version 2 needs "groups"
      {R"({"instances": [], "groups": [{"service": "kv", "group": "g1", "master": "a:1"}]})",
       "does not parse"},
      {R"({"instances": [], "groups": [{"service": "kv", "group": "g1", "epoch": "x", "master": "a:1"}]})",
       "does not parse"},
      {R"({"instances": [], "groups": [{"service": "", "group": "g1", "epoch": 1, "master": "a:1"}]})",
       "no service/group"},
      {R"({"instances": [], "groups": [{"service": "kv", "group": "g1", "epoch": -4, "master": "a:1"}]})",
       "negative epoch"},
  };
  for (const auto& [body, why] : cases) {
    WriteFile(file.path(), WithHeader(2, body));
    StatusOr<AdminState> loaded = file.Load();
    ASSERT_FALSE(loaded.ok()) << body;
    EXPECT_NE(loaded.status().message().find("corrupt"), std::string::npos) << loaded.status();
    EXPECT_NE(loaded.status().message().find(why), std::string::npos) << loaded.status();
  }
}

TEST(AdminStateFileTest, UnwritableDirectoryIsAnErrorAndKeepsNothingHalfWritten) {
  AdminStateFile file("/nonexistent-dir-for-fulcrum-test");
  Status s = file.Save(Sample());
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_NE(s.message().find("cannot create"), std::string::npos) << s;
}

// The write path under SIGKILL: a child saves state after state; the parent kills it at
// varying moments. Whatever the moment, the file is one whole state, never a torn one.
TEST(AdminStateFileTest, SurvivesSigkillDuringSaves) {
  TempDir dir;
  AdminStateFile file(dir.path());
  ASSERT_TRUE(file.Save(Sample()).ok());
  for (int round = 0; round < 10; ++round) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int i = 0;; ++i) {
        AdminState s = Sample();
        // States of different sizes so a torn write would show as a length mismatch.
        for (int j = 0; j < i % 50; ++j)
          s.Set("svc", "10.0.0." + std::to_string(j) + ":1", {i, false});
        if (!file.Save(s).ok()) ::_exit(3);
      }
    }
    ::usleep(static_cast<useconds_t>(2000 + round * 1500));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer failed on its own: " << status;
    StatusOr<AdminState> loaded = file.Load();
    ASSERT_TRUE(loaded.ok()) << "round " << round << ": " << loaded.status();
    EXPECT_GE(loaded->size(), 3u);
  }
}

}  // namespace
}  // namespace fulcrum::registry
