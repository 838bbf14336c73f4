// KvState: the key-value map a replica builds by applying its log in order. Each key
// remembers the log position that last wrote it (a removal leaves a tombstone with its
// position for a while), so the master can tell whether what it is about to reveal to a
// client is already acknowledged.
//
//   KvState state;
//   state.Apply({.position = 1, .epoch = 1, .op = OpType::kPut, .key = "k", .value = "v"});
//   state.Find("k")->value;   // "v"
//
// Thread-compatible (the Replica guards it).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "replication_log.h"

namespace kvstore {

using KvPairs = std::vector<std::pair<std::string, std::string>>;

// `pairs` (distinct keys) as a map, moving the strings.
std::map<std::string, std::string> SortedSnapshot(KvPairs pairs);

struct Value {
  bool present = false;  // false: a tombstone
  std::string value;
  int64_t position = 0;  // the entry that wrote it
};

class KvState {
 public:
  void Apply(const Entry& e);
  // The key's value or tombstone; nullptr when the key was never written (or forgotten).
  const Value* Find(const std::string& key) const;
  // Live keys only, in no particular order: the Replica takes it under its lock, so it is
  // a flat copy, without the sorting and per-key nodes of a map (SortedSnapshot does that
  // afterwards).
  KvPairs Snapshot() const;
  // Replaces everything with `data` (distinct keys), as written at `position`.
  void Load(KvPairs data, int64_t position);
  // Tombstones written at or before `position` are forgotten (a missing key reads as absent
  // anyway; they only matter while their removal may still be unacknowledged).
  void ForgetTombstonesUpTo(int64_t position);
  size_t live_keys() const { return live_; }

 private:
  std::unordered_map<std::string, Value> values_;
  std::deque<std::pair<int64_t, std::string>> tombstones_;  // by position
  size_t live_ = 0;
};

}  // namespace kvstore
