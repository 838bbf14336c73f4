#include "etcd_resolver.h"

#include <glog/logging.h>

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>

namespace fulcrum::etcd {

bool InstanceTable::Put(const std::string& key, const std::string& value, int64_t create_revision) {
  if (std::string group = LeaderKeyGroup(key); !group.empty()) {
    StatusOr<LeaderValue> leader = DecodeLeader(value);
    if (!leader.ok()) {
      LOG(WARNING) << "etcd key " << key << ": skipping a value that is not a leader ("
                   << leader.status().message() << ")";
      leaders_.erase(key);
      return false;
    }
    leaders_[key] = Leader{std::move(group), std::move(leader).value(), create_revision};
    return true;
  }
  StatusOr<Endpoint> e = DecodeEndpoint(value);
  if (!e.ok()) {
    LOG(WARNING) << "etcd key " << key << ": skipping a value that is not an instance ("
                 << e.status().message() << ")";
    by_key_.erase(key);
    return false;
  }
  by_key_[key] = std::move(e).value();
  return true;
}

EndpointSet InstanceTable::Snapshot(int64_t revision) const {
  EndpointSet set;
  set.version = static_cast<uint64_t>(revision);
  set.endpoints.reserve(by_key_.size());
  std::map<std::string, const Leader*> by_group;
  for (const auto& [key, leader] : leaders_) by_group[leader.group] = &leader;
  for (const auto& [key, endpoint] : by_key_) {
    set.endpoints.push_back(endpoint);
    Endpoint& e = set.endpoints.back();
    if (e.group.empty()) continue;
    auto it = by_group.find(e.group);
    const Leader* leader = it == by_group.end() ? nullptr : it->second;
    e.epoch = leader == nullptr ? 0 : leader->epoch;
    e.role = leader != nullptr && leader->value.address == e.Address() &&
                     leader->value.incarnation == e.incarnation
                 ? InstanceRole::kMaster
                 : InstanceRole::kSlave;
  }
  return set;
}

EtcdResolver::EtcdResolver(EtcdResolverOptions options)
    : options_(std::move(options)),
      key_prefix_(ServicePrefix(options_.prefix, options_.service)),
      http_(options_.endpoints, options_.request_timeout, options_.credentials, options_.tls) {}

EtcdResolver::~EtcdResolver() { Stop(); }

Status EtcdResolver::Start(ResolverListener* listener) {
  if (options_.service.empty()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "etcd:// resolver needs a service: etcd://host:port/<service>");
  }
  if (options_.endpoints.empty()) {
    return Status::Error(StatusCode::kInvalidArgument, "etcd:// resolver needs an etcd endpoint");
  }
  if (thread_.joinable()) return Status::Error(StatusCode::kInvalidArgument, "started twice");
  listener_ = listener;
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool EtcdResolver::Stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

bool EtcdResolver::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

Status EtcdResolver::List() {
  const nlohmann::json request = {{"key", Base64Encode(key_prefix_)},
                                  {"range_end", Base64Encode(PrefixRangeEnd(key_prefix_))}};
  StatusOr<std::string> body = http_.Post("/v3/kv/range", request.dump());
  if (!body.ok()) return body.status();
  StatusOr<RangeResult> range = ParseRangeResponse(*body);
  if (!range.ok()) {
    return Status::Error(StatusCode::kUnavailable, "bad range answer from etcd at " +
                                                       http_.current_address() + ": " +
                                                       range.status().message());
  }
  table_.Clear();
  for (const KeyValue& kv : range->kvs) table_.Put(kv.key, kv.value, kv.create_revision);
  revision_ = range->revision;
  return Status::Ok();
}

Status EtcdResolver::Watch(bool* relist, bool* outage) {
  const nlohmann::json request = {{"create_request",
                                   {{"key", Base64Encode(key_prefix_)},
                                    {"range_end", Base64Encode(PrefixRangeEnd(key_prefix_))},
                                    {"start_revision", std::to_string(revision_ + 1)}}}};
  Status opened = http_.OpenStream("/v3/watch", request.dump());
  if (!opened.ok()) return opened;
  if (*outage) {
    LOG(INFO) << "etcd://" << http_.current_address() << "/" << options_.service
              << ": etcd is back, watching from revision " << revision_ + 1;
    *outage = false;
  }
  JsonObjectSplitter splitter;
  while (true) {
    StatusOr<std::string> bytes = http_.ReadStream(options_.watch_idle);
    if (!bytes.ok()) {
      if (bytes.status().code() == StatusCode::kDeadlineExceeded) return Status::Ok();  // reopen
      return Status::Error(
          StatusCode::kUnavailable,
          "etcd at " + http_.current_address() + ": watch broke: " + bytes.status().message());
    }
    for (const std::string& object : splitter.Feed(*bytes)) {
      StatusOr<WatchResponse> w = ParseWatchResponse(object);
      if (!w.ok()) {
        http_.CloseStream();
        if (w.status().message().find("compacted") != std::string::npos) {
          *relist = true;
          return Status::Ok();
        }
        return Status::Error(
            StatusCode::kUnavailable,
            "etcd at " + http_.current_address() + ": bad watch message: " + w.status().message());
      }
      if (w->canceled) {
        http_.CloseStream();
        // etcd checks the token only as the watch starts, and its gateway answers 200 first: a
        // revoked or expired token shows here. Reopen at once with a fresh one; a second
        // refusal in a row is an error like any other.
        if (w->cancel_reason.find("auth token") != std::string::npos && !token_refused_) {
          token_refused_ = true;
          http_.ForgetToken();
          return Status::Ok();
        }
        if (w->compact_revision > 0) {
          LOG(WARNING) << "etcd://" << http_.current_address() << "/" << options_.service
                       << ": revision " << revision_ + 1 << " was compacted (now "
                       << w->compact_revision << "); listing again";
          *relist = true;
          return Status::Ok();
        }
        return Status::Error(
            StatusCode::kUnavailable,
            "etcd at " + http_.current_address() + " canceled the watch: " + w->cancel_reason);
      }
      token_refused_ = false;           // the watch was accepted
      if (w->events.empty()) continue;  // created, or a progress notice
      for (const WatchEvent& e : w->events) {
        if (e.deleted) {
          table_.Delete(e.kv.key);
        } else {
          table_.Put(e.kv.key, e.kv.value, e.kv.create_revision);
        }
        revision_ = std::max(revision_, e.kv.mod_revision);
      }
      listener_->OnUpdate(table_.Snapshot(revision_));
    }
  }
}

void EtcdResolver::Loop() {
  std::minstd_rand random(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  bool listed = false;
  bool outage = false;
  auto backoff = options_.min_backoff;
  while (!Stopping()) {
    Status s;
    if (!listed) {
      s = List();
      if (s.ok()) {
        listed = true;
        if (outage) {
          LOG(INFO) << "etcd://" << http_.current_address() << "/" << options_.service
                    << ": etcd is back";
        }
        outage = false;
        backoff = options_.min_backoff;
        listener_->OnUpdate(table_.Snapshot(revision_));
      }
    }
    if (s.ok()) {
      bool relist = false;
      s = Watch(&relist, &outage);
      if (relist) listed = false;
      if (s.ok()) continue;
      if (!outage) backoff = options_.min_backoff;  // it was working until now
    }
    if (Stopping()) return;
    if (!outage) {
      LOG(WARNING) << "etcd://" << http_.current_address() << "/" << options_.service << ": "
                   << s.message() << "; keeping the last " << table_.size()
                   << " endpoints until it is back";
      listener_->OnError(Status::Error(StatusCode::kUnavailable, s.message()));
      outage = true;
    }
    const auto wait = std::chrono::milliseconds(
        static_cast<int64_t>(static_cast<double>(backoff.count()) * jitter(random)));
    if (!Wait(wait)) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void EtcdResolver::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  http_.Cancel();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fulcrum::etcd
