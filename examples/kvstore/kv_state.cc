#include "kv_state.h"

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

std::map<std::string, std::string> KvState::Snapshot() const {
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : values_) {
    if (v.present) out.emplace(key, v.value);
  }
  return out;
}

void KvState::Load(const std::map<std::string, std::string>& data, int64_t position) {
  values_.clear();
  tombstones_.clear();
  for (const auto& [key, value] : data) values_[key] = Value{true, value, position};
  live_ = data.size();
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
