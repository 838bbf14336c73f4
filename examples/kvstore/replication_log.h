// ReplicationLog: the in-memory log a kvstore replica applies in order. Entries have
// positions 1, 2, 3... without gaps, and the epoch of the master that appended them; epochs
// never decrease along the log. Old entries are dropped (Compact) once a snapshot can stand in
// for them: the log then starts after `base`, whose position and epoch it still remembers so
// that a slave whose log ends exactly there can be checked.
//
//   ReplicationLog log;
//   log.Append({.position = 1, .epoch = 3, .op = OpType::kPut, .key = "k", .value = "v"});
//   log.EpochAt(1);   // 3
//
// Thread-compatible (the Replica guards it).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace kvstore {

enum class OpType { kPut, kRemove };

struct Entry {
  int64_t position = 0;
  int64_t epoch = 0;
  OpType op = OpType::kPut;
  std::string key;
  std::string value;
  friend bool operator==(const Entry&, const Entry&) = default;
};

// The replication position a replica reports to the registry: the epoch of its last entry in
// the high bits, that entry's position in the low 40. Comparing two such numbers is Raft's
// "more up to date" test, so the registry's "highest position wins" promotes a log that
// holds every acknowledged write (see README.md, "Why no acknowledged write is lost").
inline constexpr int kPositionBits = 40;
int64_t EncodePosition(int64_t epoch, int64_t position);

class ReplicationLog {
 public:
  int64_t base_position() const { return base_position_; }
  int64_t base_epoch() const { return base_epoch_; }
  int64_t end() const { return base_position_ + static_cast<int64_t>(entries_.size()); }
  int64_t last_epoch() const { return entries_.empty() ? base_epoch_ : entries_.back().epoch; }
  size_t size() const { return entries_.size(); }

  // The epoch of the entry at `position`, for base_position() <= position <= end()
  // (position 0 has epoch 0); nullopt outside, or when compacted away.
  std::optional<int64_t> EpochAt(int64_t position) const;
  // Appends `e`, which must be at end() + 1 with an epoch >= last_epoch(); false otherwise.
  bool Append(Entry e);
  // Entries from `from` (> base_position()) on, at most `max`.
  std::vector<Entry> Read(int64_t from, size_t max) const;
  // Drops entries so that at most `keep` remain; dropped ones become the base.
  void Compact(size_t keep);
  // Forgets everything: the log now starts after (position, epoch) (a snapshot's).
  void Reset(int64_t position, int64_t epoch);

 private:
  int64_t base_position_ = 0;
  int64_t base_epoch_ = 0;
  std::deque<Entry> entries_;
};

}  // namespace kvstore
