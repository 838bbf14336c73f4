// The etcd discovery library's wire formats: how an instance is stored (key layout and JSON value),
// and the parsing of etcd v3 JSON gateway answers (range, watch, lease). Pure functions, no I/O, so
// the unit tests cover every branch without an etcd.
//
//   key:   <prefix>/services/<service>/<host:port>
//   value: {"host":"10.0.0.7","port":9090,"weight":1,"zone":"a","metadata":{"id":"x"}}
//          (+ "group" for a master-slave instance, "incarnation" for its registration)
//
// Master-slave groups (etcd_election.h):
//   <prefix>/services/<service>/~leader/<group>   {"address":"h:p","incarnation":N}, bound to
//                                                 the master's lease; create_revision = epoch
//   <prefix>/groups/<service>/<group>/<host:port> {"position":P,"priority":R,"incarnation":N},
//                                                 bound to the instance's lease
//   <prefix>/groups/<service>/<group>/~commit     {"position":P}: acknowledged up to here
//   <prefix>/groups/<service>/<group>/~term       {"position":E}: rewritten by every winner
//   <prefix>/groups/<service>/<group>/~switchover {"address":"h:p"}: a planned switchover's
//                                                 target, bound to the requester's lease
//
//   std::string v = EncodeInstance(instance);
//   StatusOr<Endpoint> e = DecodeEndpoint(v);
//
// The gateway writes keys and values in base64 and int64 fields as JSON strings, and leaves
// out fields at their zero value (a PUT event has no "type"; an expired lease no "TTL").
//
// Thread-safe (stateless), except JsonObjectSplitter, which is thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/endpoint.h"
#include "fulcrum/registrar.h"
#include "fulcrum/status.h"

namespace fulcrum::etcd {

std::string Base64Encode(std::string_view bytes);
// kInvalidArgument on characters outside the standard alphabet or bad padding.
StatusOr<std::string> Base64Decode(std::string_view text);

// "<prefix>/services/<service>/": every instance key of the service starts with it.
std::string ServicePrefix(const std::string& prefix, const std::string& service);
std::string InstanceKey(const std::string& prefix, const std::string& service,
                        const std::string& host_port);
// The master-slave keys above.
std::string LeaderKey(const std::string& prefix, const std::string& service,
                      const std::string& group);
// The group of a leader key (any prefix and service), or "" when `key` is not one.
std::string LeaderKeyGroup(std::string_view key);
std::string CandidatesPrefix(const std::string& prefix, const std::string& service,
                             const std::string& group);
inline constexpr char kCommitKeyName[] = "~commit";
inline constexpr char kTermKeyName[] = "~term";
inline constexpr char kSwitchoverKeyName[] = "~switchover";

struct LeaderValue {
  std::string address;  // "host:port"
  uint64_t incarnation = 0;
};
std::string EncodeLeader(const LeaderValue& leader);
StatusOr<LeaderValue> DecodeLeader(std::string_view value);

struct CandidateValue {
  int64_t position = 0;  // replication position (the commit key: acknowledged position)
  int32_t priority = 0;
  uint64_t incarnation = 0;
};
std::string EncodeCandidate(const CandidateValue& candidate);
StatusOr<CandidateValue> DecodeCandidate(std::string_view value);

// The range_end that makes [key, range_end) cover every key starting with `key`.
std::string PrefixRangeEnd(std::string key);

// `incarnation`: the registration's (Endpoint::incarnation), 0 to leave it out.
std::string EncodeInstance(const ServiceInstance& instance, uint64_t incarnation = 0);
// kInvalidArgument when the value is not a JSON object with a string host and a port in
// 1..65535 (weight, zone, metadata, incarnation are optional).
StatusOr<Endpoint> DecodeEndpoint(std::string_view value);

struct KeyValue {
  std::string key;    // decoded
  std::string value;  // decoded
  int64_t mod_revision = 0;
  int64_t create_revision = 0;
  int64_t lease = 0;  // 0: none
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision the range was read at
  std::vector<KeyValue> kvs;
};
StatusOr<RangeResult> ParseRangeResponse(std::string_view json);

// /v3/kv/txn: whether the comparisons held, the revision, and the kvs of each range request
// among the operations that ran (in order; puts contribute nothing).
struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<std::vector<KeyValue>> ranges;
};
StatusOr<TxnResult> ParseTxnResponse(std::string_view json);

struct WatchEvent {
  bool deleted = false;  // else a PUT
  KeyValue kv;
};

struct WatchResponse {
  int64_t revision = 0;  // header.revision
  bool created = false;
  bool canceled = false;
  int64_t compact_revision = 0;  // > 0: the revision asked for was compacted
  std::string cancel_reason;
  std::vector<WatchEvent> events;
};
// One object of the /v3/watch stream ({"result":{...}}). An {"error":...} object is
// kUnavailable carrying etcd's message.
StatusOr<WatchResponse> ParseWatchResponse(std::string_view json);

struct LeaseResult {
  int64_t id = 0;
  int64_t ttl_s = 0;  // 0 from a keepalive: the lease is gone
};
// /v3/lease/grant and /v3/lease/keepalive answers (the latter wrapped in "result").
StatusOr<LeaseResult> ParseLeaseResponse(std::string_view json);

// etcd's error body ({"error":"...","message":"...","code":N}) as text, or the body itself.
std::string ErrorMessage(std::string_view body);

// Cuts a byte stream of concatenated JSON objects (what the watch stream carries, whatever
// the chunking) into whole objects. Bytes outside an object (newlines) are dropped.
class JsonObjectSplitter {
 public:
  // Appends bytes; returns the objects completed by them, in order.
  std::vector<std::string> Feed(std::string_view bytes);
  // Bytes of an unfinished object held back.
  size_t pending() const { return current_.size(); }

 private:
  std::string current_;
  int depth_ = 0;
  bool in_string_ = false;
  bool escaped_ = false;
};

}  // namespace fulcrum::etcd
