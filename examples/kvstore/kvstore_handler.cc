#include "kvstore_handler.h"

#include <glog/logging.h>

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/framed_transport.h"

namespace kvstore {

void ThrowKvError(const KvStatus& s) {
  rpc::KvError e;
  switch (s.code) {
    case KvCode::kNotEnoughReplicas:
      e.code = rpc::ErrorCode::NOT_ENOUGH_REPLICAS;
      break;
    case KvCode::kReplicationTimeout:
      e.code = rpc::ErrorCode::REPLICATION_TIMEOUT;
      break;
    case KvCode::kNotMaster:
      e.code = rpc::ErrorCode::NOT_MASTER;
      break;
    case KvCode::kStaleEpoch:
      e.code = rpc::ErrorCode::STALE_EPOCH;
      break;
    default:
      e.code = rpc::ErrorCode::INVALID_ARGUMENT;
      break;
  }
  e.message = s.message;
  e.master = s.master;
  throw e;
}

namespace {

void CheckKey(const std::string& key) {
  if (key.empty()) ThrowKvError({KvCode::kInvalidArgument, "the key must not be empty", ""});
}

}  // namespace

void KvStoreHandler::get(rpc::GetResult& _return, const std::string& key) {
  auto r = replica_.Get(key);
  if (!r.ok()) ThrowKvError(r.status);
  _return.found = r.value.has_value();
  _return.value = r.value.value_or("");
}

void KvStoreHandler::put(const std::string& key, const std::string& value) {
  CheckKey(key);
  KvStatus s = replica_.Put(key, value);
  if (!s.ok()) ThrowKvError(s);
}

bool KvStoreHandler::remove(const std::string& key) {
  CheckKey(key);
  auto r = replica_.Remove(key);
  if (!r.ok()) ThrowKvError(r.status);
  return r.value;
}

bool KvStoreHandler::compare_and_set(const std::string& key, const std::string& expected,
                                     bool expect_absent, const std::string& value) {
  CheckKey(key);
  auto r =
      replica_.CompareAndSet(key, expect_absent ? std::nullopt : std::optional(expected), value);
  if (!r.ok()) ThrowKvError(r.status);
  return r.value;
}

void KvStoreHandler::fetch(rpc::FetchResult& _return, const std::string& replica, int64_t epoch,
                           int64_t from_position, int64_t prev_entry_epoch, int32_t max_wait_ms) {
  FetchRequest r{replica, epoch, from_position, prev_entry_epoch,
                 std::chrono::milliseconds(std::max(0, max_wait_ms))};
  auto out = replica_.Fetch(r);
  if (!out.ok()) ThrowKvError(out.status);
  _return = ToThrift(std::move(out.value));
}

void KvStoreHandler::status(rpc::ReplicaStatus& _return) {
  const ReplicaInfo info = replica_.Info();
  switch (info.role) {
    case fulcrum::InstanceRole::kMaster:
      _return.role = "master";
      break;
    case fulcrum::InstanceRole::kSlave:
      _return.role = "slave";
      break;
    default:
      _return.role = "none";
      break;
  }
  _return.epoch = info.epoch;
  _return.log_end = info.log_end;
  _return.last_epoch = info.last_epoch;
  _return.commit_position = info.commit_position;
  _return.insync_slaves = info.insync_slaves;
  _return.keys = static_cast<int64_t>(info.keys);
}

rpc::LogEntry ToThrift(const Entry& e) {
  rpc::LogEntry out;
  out.position = e.position;
  out.epoch = e.epoch;
  out.op = e.op == OpType::kPut ? rpc::OpType::PUT : rpc::OpType::REMOVE;
  out.key = e.key;
  out.value = e.value;
  return out;
}

Entry FromThrift(const rpc::LogEntry& e) {
  return Entry{e.position, e.epoch, e.op == rpc::OpType::REMOVE ? OpType::kRemove : OpType::kPut,
               e.key, e.value};
}

rpc::FetchResult ToThrift(FetchResponse r) {
  rpc::FetchResult out;
  out.epoch = r.epoch;
  out.entries.reserve(r.entries.size());
  for (const Entry& e : r.entries) out.entries.push_back(ToThrift(e));
  if (r.snapshot) {
    out.__isset.snapshot = true;
    out.snapshot.position = r.snapshot->position;
    out.snapshot.epoch = r.snapshot->epoch;
    // Sorted here, in the handler's thread, not under the replica's lock.
    out.snapshot.data = SortedSnapshot(std::move(r.snapshot->data));
  }
  return out;
}

FetchResponse FromThrift(rpc::FetchResult r) {
  FetchResponse out;
  out.epoch = r.epoch;
  out.entries.reserve(r.entries.size());
  for (const rpc::LogEntry& e : r.entries) out.entries.push_back(FromThrift(e));
  if (r.__isset.snapshot) {
    KvPairs data;
    data.reserve(r.snapshot.data.size());
    while (!r.snapshot.data.empty()) {  // node by node: the strings move, not copied
      auto node = r.snapshot.data.extract(r.snapshot.data.begin());
      data.emplace_back(std::move(node.key()), std::move(node.mapped()));
    }
    out.snapshot = SnapshotData{r.snapshot.position, r.snapshot.epoch, std::move(data)};
  }
  return out;
}

struct FetchClient::Connection {
  std::string address;
  std::shared_ptr<apache::thrift::transport::TTransport> transport;
  std::unique_ptr<rpc::KvStoreClient> client;
};

FetchClient::FetchClient(std::chrono::milliseconds connect_timeout)
    : connect_timeout_(connect_timeout) {}

FetchClient::~FetchClient() = default;

KvResult<FetchResponse> FetchClient::Fetch(const std::string& master, const FetchRequest& request) {
  KvResult<FetchResponse> out;
  try {
    if (!conn_ || conn_->address != master) {
      conn_.reset();
      const size_t colon = master.rfind(':');
      if (colon == std::string::npos) {
        out.status = {KvCode::kInvalidArgument, "bad master address " + master, ""};
        return out;
      }
      auto socket = std::make_shared<apache::thrift::transport::TSocket>(
          master.substr(0, colon), std::stoi(master.substr(colon + 1)));
      socket->setConnTimeout(static_cast<int>(connect_timeout_.count()));
      // The long poll plus slack for a large snapshot.
      socket->setRecvTimeout(
          static_cast<int>(
              std::chrono::duration_cast<std::chrono::milliseconds>(request.max_wait).count()) +
          5000);
      socket->setNoDelay(true);
      auto c = std::make_unique<Connection>();
      c->address = master;
      c->transport = std::make_shared<fulcrum::FramedTransport>(socket);
      c->client = std::make_unique<rpc::KvStoreClient>(
          std::make_shared<apache::thrift::protocol::TBinaryProtocol>(c->transport));
      c->transport->open();
      conn_ = std::move(c);
    }
    rpc::FetchResult result;
    conn_->client->fetch(
        result, request.replica, request.epoch, request.from_position, request.prev_entry_epoch,
        static_cast<int32_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(request.max_wait).count()));
    out.value = FromThrift(std::move(result));
  } catch (const rpc::KvError& e) {
    out.status = {e.code == rpc::ErrorCode::STALE_EPOCH ? KvCode::kStaleEpoch : KvCode::kNotMaster,
                  "master says: " + e.message, e.master};
  } catch (const std::exception& e) {
    conn_.reset();
    out.status = {KvCode::kNotMaster, std::string("fetch failed: ") + e.what(), ""};
  }
  return out;
}

}  // namespace kvstore
