#include "replication_log.h"

namespace kvstore {

int64_t EncodePosition(int64_t epoch, int64_t position) {
  return (epoch << kPositionBits) | position;
}

std::optional<int64_t> ReplicationLog::EpochAt(int64_t position) const {
  if (position < base_position_ || position > end()) return std::nullopt;
  if (position == base_position_) return base_epoch_;
  return entries_[static_cast<size_t>(position - base_position_ - 1)].epoch;
}

bool ReplicationLog::Append(Entry e) {
  if (e.position != end() + 1 || e.epoch < last_epoch()) return false;
  entries_.push_back(std::move(e));
  return true;
}

std::vector<Entry> ReplicationLog::Read(int64_t from, size_t max) const {
  std::vector<Entry> out;
  if (from <= base_position_) return out;
  for (int64_t p = from; p <= end() && out.size() < max; ++p) {
    out.push_back(entries_[static_cast<size_t>(p - base_position_ - 1)]);
  }
  return out;
}

void ReplicationLog::Compact(size_t keep) {
  while (entries_.size() > keep) {
    base_position_ = entries_.front().position;
    base_epoch_ = entries_.front().epoch;
    entries_.pop_front();
  }
}

void ReplicationLog::Reset(int64_t position, int64_t epoch) {
  entries_.clear();
  base_position_ = position;
  base_epoch_ = epoch;
}

}  // namespace kvstore
