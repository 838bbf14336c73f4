// AdminState: what an administrator decided (weights, drains) and the master-slave groups'
// epochs and masters, and AdminStateFile, which keeps it on disk so it survives SIGKILL and
// restarts.
//
//   AdminStateFile file("/var/lib/fulcrum-registry");
//   StatusOr<AdminState> state = file.Load();   // a corrupt file is an error, never half-loaded
//   state->Set("calc", "10.0.0.1:9090", {.weight = 5});
//   CHECK(file.Save(*state).ok());               // on disk (fsync'd) when this returns
//
// The file is one header line and a JSON body:
//   fulcrum-registry-state <format version> <body bytes> <crc32 of the body, hex>\n<body>
// so a truncated body (length), a flipped byte (checksum), a file from a newer registry
// (format version) and a missing header are each detected and reported by name. Version 1
// files (no groups) still load; version 2 adds "groups". Save writes
// a temporary file, fsyncs it, renames it over the old one and fsyncs the directory: a crash
// at any point leaves either the old file or the new one, whole.
//
// AdminState is a value type (thread-compatible). AdminStateFile is thread-compatible: the
// registry's store serialises Save calls.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "fulcrum/status.h"

namespace fulcrum::registry {

struct AdminEntry {
  std::optional<int32_t> weight;  // overrides the registered weight when set
  bool drained = false;

  bool empty() const { return !weight.has_value() && !drained; }
  friend bool operator==(const AdminEntry&, const AdminEntry&) = default;
};

// A master-slave group's durable part: the epoch (never goes back) and its master.
struct GroupRecord {
  int64_t epoch = 0;
  std::string master;              // "host:port"
  int64_t master_incarnation = 0;  // 0: not known
  friend bool operator==(const GroupRecord&, const GroupRecord&) = default;
};

class AdminState {
 public:
  // service -> address ("host:port") -> entry. Empty entries are never stored.
  using Map = std::map<std::string, std::map<std::string, AdminEntry>>;

  const AdminEntry* Find(const std::string& service, const std::string& address) const;
  // Stores `entry`, or erases the instance's entry when `entry` is empty.
  void Set(const std::string& service, const std::string& address, const AdminEntry& entry);
  void Erase(const std::string& service, const std::string& address);
  const Map& entries() const { return entries_; }
  size_t size() const;

  // service -> group -> record.
  using GroupMap = std::map<std::string, std::map<std::string, GroupRecord>>;
  const GroupRecord* FindGroup(const std::string& service, const std::string& group) const;
  void SetGroup(const std::string& service, const std::string& group, const GroupRecord& record);
  const GroupMap& groups() const { return groups_; }

  friend bool operator==(const AdminState&, const AdminState&) = default;

 private:
  Map entries_;
  GroupMap groups_;
};

// The on-disk encoding, exposed for tests of corruption handling.
std::string EncodeAdminState(const AdminState& state);
StatusOr<AdminState> DecodeAdminState(const std::string& bytes);

class AdminStateFile {
 public:
  static constexpr int kFormatVersion = 2;
  static constexpr int kOldestFormatVersion = 1;  // still loaded
  static constexpr const char* kFileName = "admin_state";

  explicit AdminStateFile(std::string dir) : dir_(std::move(dir)) {}

  // The saved state; an empty state when there is no file yet (a new data directory).
  // kInternal naming the file and the problem when it exists but cannot be trusted.
  StatusOr<AdminState> Load() const;
  // Durable when it returns OK. On error the previous file is intact.
  Status Save(const AdminState& state) const;

  std::string path() const { return dir_ + "/" + kFileName; }

 private:
  std::string dir_;
};

}  // namespace fulcrum::registry
