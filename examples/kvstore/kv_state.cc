#include "kv_state.h"

#include <algorithm>

namespace kvstore {

void KvState::Apply(const Entry& e) {
  Value& v = values_[e.key];
  if (v.present) --live_;
  v.present = e.op == OpType::kPut;
  v.position = e.position;
  if (v.present) {
    v.value = e.value;
    ++live_;
  } else {
    v.value.clear();
    tombstones_.emplace_back(e.position, e.key);
  }
}

const Value* KvState::Find(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? nullptr : &it->second;
}

std::map<std::string, std::string> SortedSnapshot(KvPairs pairs) {
  std::sort(pairs.begin(), pairs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::map<std::string, std::string> out;
  // In order, each at the end: no search, no comparison but the hint's.
  for (auto& [key, value] : pairs) out.emplace_hint(out.end(), std::move(key), std::move(value));
  return out;
}

KvPairs KvState::Snapshot() const {
  KvPairs out;
  out.reserve(live_);
  for (const auto& [key, v] : values_) {
    if (v.present) out.emplace_back(key, v.value);
  }
  return out;
}

void KvState::Load(KvPairs data, int64_t position) {
  values_.clear();
  tombstones_.clear();
  live_ = data.size();
  values_.reserve(data.size());
  for (auto& [key, value] : data) {
    values_.emplace(std::move(key), Value{true, std::move(value), position});
  }
}

void KvState::ForgetTombstonesUpTo(int64_t position) {
  while (!tombstones_.empty() && tombstones_.front().first <= position) {
    auto it = values_.find(tombstones_.front().second);
    // Only if no later write brought the key back (or removed it again).
    if (it != values_.end() && !it->second.present &&
        it->second.position == tombstones_.front().first) {
      values_.erase(it);
    }
    tombstones_.pop_front();
  }
}

}  // namespace kvstore
