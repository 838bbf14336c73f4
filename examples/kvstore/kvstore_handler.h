// KvStoreHandler: the Thrift face of a kvstore replica (kvstore.thrift's KvStore), and
// FetchClient, the slave's connection to its master's fetch.
//
//   auto role = std::make_shared<fulcrum::RoleState>();
//   kvstore::Replica replica(*role, {.self = "127.0.0.1:9000"});
//   auto handler = std::make_shared<kvstore::KvStoreHandler>(replica);
//
// Errors reach clients as the declared rpc::KvError. The generated server glue admits writes
// (RoleState::BeginWrite) before they reach the handler and refuses the others with a
// NotMaster redirect; the Replica checks the role again (ReplicaOptions).
//
// Thread-safe.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "KvStore.h"
#include "fulcrum/role.h"
#include "replica.h"

namespace kvstore {

class KvStoreHandler : public rpc::KvStoreIf {
 public:
  explicit KvStoreHandler(Replica& replica) : replica_(replica) {}

  void get(rpc::GetResult& _return, const std::string& key) override;
  void put(const std::string& key, const std::string& value) override;
  bool remove(const std::string& key) override;
  bool compare_and_set(const std::string& key, const std::string& expected, bool expect_absent,
                       const std::string& value) override;
  void fetch(rpc::FetchResult& _return, const std::string& replica, int64_t epoch,
             int64_t from_position, int64_t prev_entry_epoch, int32_t max_wait_ms) override;
  void status(rpc::ReplicaStatus& _return) override;

 private:
  Replica& replica_;
};

// Throws the rpc::KvError that `s` (not ok) stands for.
[[noreturn]] void ThrowKvError(const KvStatus& s);

// A slave's client for its master's fetch; reconnects when the master changes or a call fails.
// Thread-compatible: the Follower's thread is its only user.
class FetchClient {
 public:
  explicit FetchClient(std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(200));
  ~FetchClient();
  KvResult<FetchResponse> Fetch(const std::string& master, const FetchRequest& request);

 private:
  struct Connection;
  std::chrono::milliseconds connect_timeout_;
  std::unique_ptr<Connection> conn_;
};

// Conversions between the core's types and kvstore.thrift's.
rpc::LogEntry ToThrift(const Entry& e);
Entry FromThrift(const rpc::LogEntry& e);
// By value: a snapshot can hold every key of the store, so callers move it in.
rpc::FetchResult ToThrift(FetchResponse r);
FetchResponse FromThrift(rpc::FetchResult r);

}  // namespace kvstore
