#include "etcd_registrar.h"

#include <glog/logging.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "etcd_codec.h"
#include "etcd_election.h"
#include "fulcrum/clock.h"
#include "fulcrum/random.h"

namespace fulcrum::etcd {

EtcdRegistrar::EtcdRegistrar(EtcdRegistrarOptions options)
    : options_(std::move(options)),
      http_(options_.endpoints, options_.request_timeout, options_.credentials, options_.tls) {}

EtcdRegistrar::~EtcdRegistrar() { StopThread(); }

std::chrono::milliseconds EtcdRegistrar::KeepAliveInterval() const {
  const int64_t ttl = std::max<int64_t>(1, granted_ttl_s_.load());
  return std::chrono::milliseconds(ttl * 1000 / 3);
}

bool EtcdRegistrar::registered() const {
  return registered_.load() &&
         std::chrono::steady_clock::now().time_since_epoch().count() < alive_until_ns_.load();
}

void EtcdRegistrar::AliveFor(std::chrono::steady_clock::time_point sent, int64_t ttl_s) {
  alive_until_ns_ = (sent + std::chrono::seconds(ttl_s)).time_since_epoch().count();
  next_keepalive_ = sent + KeepAliveInterval();
}

Status EtcdRegistrar::RegisterOnce() {
  const TimePoint sent_at = Clock::Real().Now();
  const auto sent = std::chrono::steady_clock::now();
  StatusOr<std::string> granted =
      http_.Post("/v3/lease/grant", nlohmann::json{{"TTL", options_.ttl_s}}.dump());
  if (!granted.ok()) return granted.status();
  StatusOr<LeaseResult> lease = ParseLeaseResponse(*granted);
  if (!lease.ok()) return lease.status();
  if (lease->id == 0 || lease->ttl_s <= 0) {
    return Status::Error(StatusCode::kInternal, "etcd granted no lease: " + *granted);
  }
  nlohmann::json put = {{"key", Base64Encode(key_)},
                        {"value", Base64Encode(EncodeInstance(instance_, incarnation_))},
                        {"lease", std::to_string(lease->id)}};
  StatusOr<std::string> done = http_.Post("/v3/kv/put", put.dump());
  if (!done.ok()) return done.status();  // the lease expires by itself
  granted_ttl_s_ = lease->ttl_s;
  lease_ = lease->id;
  lease_sent_at_ = sent_at;
  AliveFor(sent, lease->ttl_s);
  registered_ = true;
  return Status::Ok();
}

Status EtcdRegistrar::KeepAliveOnce(bool* gone) {
  *gone = false;
  const bool grouped = !instance_.group.empty();
  // A stateless instance's load report has nowhere to go in etcd; a group's goes with
  // ElectionStep.
  if (callbacks_.load && !grouped) callbacks_.load();
  const TimePoint sent_at = Clock::Real().Now();
  const auto sent = std::chrono::steady_clock::now();
  StatusOr<std::string> answer = http_.Post(
      "/v3/lease/keepalive", nlohmann::json{{"ID", std::to_string(lease_.load())}}.dump());
  if (!answer.ok()) return answer.status();
  StatusOr<LeaseResult> lease = ParseLeaseResponse(*answer);
  if (!lease.ok()) return lease.status();
  if (lease->ttl_s <= 0) {
    *gone = true;
    return Status::Ok();
  }
  granted_ttl_s_ = lease->ttl_s;
  lease_sent_at_ = sent_at;
  AliveFor(sent, lease->ttl_s);
  if (callbacks_.on_directives && !grouped) callbacks_.on_directives(RegistrarDirectives{});
  return Status::Ok();
}

Status EtcdRegistrar::Register(const ServiceInstance& instance, RegistrationOptions options) {
  if (thread_.joinable()) {
    return Status::Error(StatusCode::kInvalidArgument, "Register called twice");
  }
  if (instance.group.find('/') != std::string::npos ||
      instance.group.find('~') != std::string::npos) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "bad group name '" + instance.group + "' (has '/' or '~')");
  }
  if (instance.service.empty() || instance.service.find('/') != std::string::npos) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "bad service name '" + instance.service + "' (empty or has '/')");
  }
  if (instance.host.empty() || instance.port == 0) {
    return Status::Error(StatusCode::kInvalidArgument, "instance needs a host and a port");
  }
  instance_ = instance;
  // This registration's incarnation, kept when it registers again after losing its lease: a
  // new process at the same address is told apart from this one (Endpoint::incarnation).
  do {
    incarnation_ = Random::ThreadLocal().Next();
  } while (incarnation_ == 0);
  address_ = EtcdAddress{instance.host, instance.port}.ToString();
  key_ = InstanceKey(options_.prefix, instance.service, address_);
  if (!instance.group.empty()) {
    leader_key_ = LeaderKey(options_.prefix, instance.service, instance.group);
    candidates_prefix_ = CandidatesPrefix(options_.prefix, instance.service, instance.group);
  }
  callbacks_ = std::move(options);
  // The instance is valid, so whatever etcd says now (unreachable, no leader yet after a
  // restart, a lease that expired between grant and put) may pass: keep trying.
  Status s = RegisterOnce();
  if (!s.ok()) {
    LOG(WARNING) << "cannot register " << key_ << " in etcd now (" << s.message()
                 << "); retrying in the background";
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::Ok();
}

bool EtcdRegistrar::Wait(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void EtcdRegistrar::Loop() {
  const bool grouped = !instance_.group.empty();
  bool outage = lease_.load() == 0;
  auto backoff = options_.min_backoff;
  // A group instance reads its group at once (to learn its role); a stateless one has just
  // registered.
  if (!outage && !grouped && !Wait(KeepAliveInterval())) return;
  // Group instances send their transactions to etcd's leader when they can (a hop fewer):
  // found now, after an outage, and every 50 ticks (10 s) to follow a leader change.
  int ticks_to_leader_check = 0;
  while (true) {
    if (grouped && !outage && ticks_to_leader_check-- <= 0) {
      ticks_to_leader_check = 50;
      if (Status s = http_.PreferLeader(); !s.ok()) {
        VLOG(1) << key_ << ": etcd's leader not preferred: " << s.message();
      }
    }
    bool gone = false;
    Status s;
    if (lease_.load() == 0) {
      s = RegisterOnce();
    } else if (std::chrono::steady_clock::now() >= next_keepalive_) {
      s = KeepAliveOnce(&gone);
    }
    if (s.ok() && !gone && grouped) {
      s = ElectionStep();
      // The lease may be what failed it (etcd refuses a put on an expired lease): check the
      // lease first on the next round.
      if (!s.ok()) next_keepalive_ = {};
    }
    if (http_.cancelled()) return;
    if (!s.ok()) {
      if (!outage) {
        LOG(WARNING) << "etcd unreachable or refusing (" << s.message() << "); " << key_
                     << " still serving, retrying every <= " << options_.max_backoff.count()
                     << " ms";
      }
      outage = true;
      ticks_to_leader_check = 0;
      if (!Wait(std::min(backoff, KeepAliveInterval()))) return;
      backoff = std::min(backoff * 2, options_.max_backoff);
      continue;
    }
    if (gone) {
      LOG(INFO) << "etcd lease of " << key_ << " is gone (expired?): registering again";
      registered_ = false;
      lease_ = 0;
      reregistrations_.fetch_add(1);
      continue;
    }
    if (outage) LOG(INFO) << "registered " << key_ << " in etcd at " << http_.current_address();
    outage = false;
    backoff = options_.min_backoff;
    if (!Wait(grouped ? std::min(options_.election_interval, KeepAliveInterval())
                      : KeepAliveInterval())) {
      return;
    }
  }
}

namespace {

nlohmann::json PutOp(const std::string& key, const std::string& value, int64_t lease) {
  nlohmann::json put = {{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  return {{"request_put", std::move(put)}};
}

nlohmann::json RangeOp(const std::string& key, bool prefix) {
  nlohmann::json range = {{"key", Base64Encode(key)}};
  if (prefix) range["range_end"] = Base64Encode(PrefixRangeEnd(key));
  return {{"request_range", std::move(range)}};
}

}  // namespace

Status EtcdRegistrar::ElectionStep() {
  const LoadReport load = callbacks_.load ? callbacks_.load() : LoadReport{};
  const int64_t lease = lease_.load();
  // Publish what changed, and read the group, in one transaction (no comparisons).
  nlohmann::json ops = nlohmann::json::array();
  const bool publish =
      load.replication_position != published_position_ || lease != published_lease_;
  if (publish) {
    ops.push_back(PutOp(candidates_prefix_ + address_,
                        EncodeCandidate({.position = load.replication_position,
                                         .priority = instance_.priority,
                                         .incarnation = incarnation_}),
                        lease));
  }
  // The commit position goes up only, and only from the master: the next master must reach it.
  const bool commit = master_ && load.commit_position > commit_seen_;
  if (commit) {
    ops.push_back(PutOp(candidates_prefix_ + kCommitKeyName,
                        EncodeCandidate({.position = load.commit_position}), 0));
  }
  ops.push_back(RangeOp(candidates_prefix_, /*prefix=*/true));
  ops.push_back(RangeOp(leader_key_, /*prefix=*/false));
  StatusOr<std::string> body =
      http_.Post("/v3/kv/txn", nlohmann::json{{"success", std::move(ops)}}.dump());
  if (!body.ok()) return body.status();
  StatusOr<TxnResult> read = ParseTxnResponse(*body);
  if (!read.ok()) return read.status();
  if (read->ranges.size() != 2) {
    return Status::Error(StatusCode::kInternal, "etcd's txn answer lacks its ranges: " + *body);
  }
  if (publish) {
    published_position_ = load.replication_position;
    published_lease_ = lease;
  }
  GroupState group = ReadGroupState(read->ranges[0], read->ranges[1]);
  commit_seen_ = std::max(commit_seen_, group.commit);
  // A group that cannot elect: no live replica has the commit position (those that had the
  // acknowledged writes are gone). It waits, as with the registry, rather than lose them;
  // said once per episode.
  const bool stalled = !group.leader && std::none_of(group.candidates.begin(),
                                                     group.candidates.end(), [&](const auto& c) {
                                                       return c.second.position >= group.commit;
                                                     });
  if (stalled && !stalled_) {
    int64_t highest = 0;
    for (const auto& [address, c] : group.candidates) highest = std::max(highest, c.position);
    LOG(WARNING) << "group " << instance_.group << " of " << instance_.service
                 << " has no master and cannot elect one: no live replica has the commit position "
                 << group.commit << " (highest " << highest
                 << "); waiting for a replica that has it (or delete the ~commit key to accept "
                    "the loss)";
  }
  stalled_ = stalled;

  bool mine = group.leader && group.leader->incarnation == incarnation_ &&
              group.leader->address == address_ && group.leader_lease == lease;
  int64_t epoch = group.epoch;
  // A planned switchover: stop admitting writes; once none is in flight (the position read
  // after that is final) and the target has published at least that position, hand over.
  const bool stop_writes = mine && SwitchoverAsked(group, address_);
  if (stop_writes && load.writes_quiesced &&
      MayResign(group, address_, load.replication_position)) {
    StatusOr<bool> resigned = Resign(group.epoch);
    if (!resigned.ok()) return resigned.status();
    if (*resigned) {
      LOG(INFO) << key_ << " (group " << instance_.group << "): handing over to "
                << group.switchover_target << " at position " << load.replication_position;
      mine = false;
      group.leader.reset();
    }
  }
  if (!group.leader && ShouldCampaign(group, address_)) {
    StatusOr<bool> won = Campaign(group.term_revision, group.switchover_target == address_, &epoch);
    if (!won.ok()) return won.status();
    mine = *won;
  }
  epoch_seen_ = std::max(epoch_seen_, epoch);
  if (mine != master_) {
    LOG(INFO) << key_ << " (group " << instance_.group << "): "
              << (mine ? "master at epoch " + std::to_string(epoch)
                       : "no longer master; master is " +
                             (group.leader ? group.leader->address : std::string("unknown")));
  }
  master_ = mine;
  if (!callbacks_.on_directives) return Status::Ok();
  RegistrarDirectives d;
  d.epoch = epoch_seen_;
  if (mine) {
    d.role = InstanceRole::kMaster;
    d.master_address = address_;
    // Three quarters of the TTL: the deadline tests/model/etcd.pml checks (TTL 4 ticks, the
    // master's deadline 3 after its keepalive left), which leaves room for a slow clock.
    d.master_lease = std::chrono::milliseconds(granted_ttl_s_.load() * 750);
    d.sent_at = lease_sent_at_;
    d.stop_writes = stop_writes;
  } else {
    d.role = InstanceRole::kSlave;
    // A leader key at our own address that is not ours is a dead predecessor's (this process
    // restarted on its port before the key expired): no master to follow yet.
    if (group.leader && group.epoch == epoch_seen_ && group.leader->address != address_) {
      d.master_address = group.leader->address;
    }
  }
  callbacks_.on_directives(d);
  return Status::Ok();
}

StatusOr<bool> EtcdRegistrar::Resign(int64_t epoch) {
  // Delete the leader key if it is still the one this instance created.
  nlohmann::json txn = {
      {"compare", nlohmann::json::array({{{"key", Base64Encode(leader_key_)},
                                          {"target", "CREATE"},
                                          {"result", "EQUAL"},
                                          {"create_revision", std::to_string(epoch)}}})},
      {"success",
       nlohmann::json::array({{{"request_delete_range", {{"key", Base64Encode(leader_key_)}}}}})}};
  StatusOr<std::string> body = http_.Post("/v3/kv/txn", txn.dump());
  if (!body.ok()) return body.status();
  StatusOr<TxnResult> result = ParseTxnResponse(*body);
  if (!result.ok()) return result.status();
  return result->succeeded;
}

StatusOr<bool> EtcdRegistrar::Campaign(int64_t term_revision, bool switchover_target,
                                       int64_t* epoch) {
  // Create the leader key with this instance's lease if it does not exist and nobody has won
  // since our read (the term key unchanged: a master elected and lost meanwhile may have
  // acknowledged writes our read of the positions does not show). The put fails with the whole
  // transaction if the lease has expired meanwhile (etcd issue 11456 cannot hand us a key on a
  // dead lease); either way the end of our writes is our own deadline (lease_sent_at_ + lease).
  const std::string term_key = candidates_prefix_ + kTermKeyName;
  nlohmann::json txn = {
      {"compare", nlohmann::json::array({{{"key", Base64Encode(leader_key_)},
                                          {"target", "CREATE"},
                                          {"result", "EQUAL"},
                                          {"create_revision", "0"}},
                                         {{"key", Base64Encode(term_key)},
                                          {"target", "MOD"},
                                          {"result", "EQUAL"},
                                          {"mod_revision", std::to_string(term_revision)}}})},
      {"success",
       nlohmann::json::array(
           {PutOp(leader_key_, EncodeLeader({.address = address_, .incarnation = incarnation_}),
                  lease_.load()),
            PutOp(term_key, EncodeCandidate({.position = term_revision}), 0)})}};
  if (switchover_target) {  // the switchover is done
    txn["success"].push_back({{"request_delete_range",
                               {{"key", Base64Encode(candidates_prefix_ + kSwitchoverKeyName)}}}});
  }
  StatusOr<std::string> body = http_.Post("/v3/kv/txn", txn.dump());
  if (!body.ok()) return body.status();
  StatusOr<TxnResult> result = ParseTxnResponse(*body);
  if (!result.ok()) return result.status();
  if (!result->succeeded) return false;  // someone else was faster: the next tick reads them
  // etcd 11456: an answer can come after the lease expired. Ask for the lease's time to live;
  // if it is gone, the key went with it and this win counts for nothing.
  StatusOr<std::string> ttl = http_.Post(
      "/v3/lease/timetolive", nlohmann::json{{"ID", std::to_string(lease_.load())}}.dump());
  if (!ttl.ok()) return ttl.status();
  StatusOr<LeaseResult> alive = ParseLeaseResponse(*ttl);
  if (!alive.ok()) return alive.status();
  if (alive->ttl_s <= 0) {
    LOG(WARNING) << key_ << ": won the election of group " << instance_.group
                 << " on a lease that has since expired; not master";
    return false;
  }
  *epoch = result->revision;  // the put's revision is the key's create_revision
  elections_won_.fetch_add(1);
  return true;
}

void EtcdRegistrar::StopThread() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  http_.Cancel();
  if (thread_.joinable()) thread_.join();
}

Status EtcdRegistrar::Deregister() {
  StopThread();
  registered_ = false;
  const int64_t lease = lease_.exchange(0);
  if (lease == 0) return Status::Ok();
  EtcdHttpClient http(options_.endpoints, options_.request_timeout, options_.credentials,
                      options_.tls);
  StatusOr<std::string> revoked =
      http.Post("/v3/lease/revoke", nlohmann::json{{"ID", std::to_string(lease)}}.dump());
  if (revoked.ok() || revoked.status().code() == StatusCode::kNotFound) return Status::Ok();
  LOG(WARNING) << "could not revoke the etcd lease of " << key_ << " (" << revoked.status()
               << "); the key goes when the lease expires in <= " << granted_ttl_s_.load() << " s";
  return Status::Error(StatusCode::kUnavailable,
                       "could not deregister " + key_ + ": " + revoked.status().message());
}

}  // namespace fulcrum::etcd
