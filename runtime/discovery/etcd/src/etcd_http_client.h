// EtcdHttpClient: POSTs JSON to etcd's v3 gateway over HTTP/1.1 (Boost.Beast; https with
// EtcdTls: Asio's OpenSSL streams, etcd's certificate checked against the CA and the
// endpoint's name or IP, a client certificate if given), one connection per call, moving to the
// next etcd endpoint when one cannot be reached; and one streaming call (the watch) whose body is
// read piece by piece.
//
//   EtcdHttpClient http({{"127.0.0.1", 2379}}, std::chrono::seconds(1));
//   StatusOr<std::string> body = http.Post("/v3/kv/range", R"({"key":"Zm9v"})");
//
// With credentials (etcd's authentication on), the client gets a token from
// /v3/auth/authenticate before its first call and sends it with every request; when etcd
// answers that the token is invalid (it expired: simple tokens live --auth-token-ttl, 5 min
// by default, or etcd restarted), it authenticates again and repeats the call once.
//
// Every wait is bounded: a call gives up after `timeout` per endpoint tried (a stream read
// after the idle time it is given), and Cancel() makes a call blocked in another thread return
// at once. Beast runs asynchronously on an io_context owned by each connection; the calling
// thread runs it for at most the time left, so Cancel only has to stop that io_context, and
// dropping the connection discards whatever was still pending.
//
// Thread-compatible, except Cancel(), which any thread may call at any time.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "etcd_uri.h"
#include "fulcrum/status.h"

namespace boost::asio {
class io_context;
namespace ssl {
class context;
}
}  // namespace boost::asio

namespace fulcrum::etcd {

class EtcdHttpClient {
 public:
  // A TLS setup that cannot be loaded (unreadable or bad PEM files) makes every call fail with
  // kInvalidArgument saying why.
  EtcdHttpClient(std::vector<EtcdAddress> endpoints, std::chrono::milliseconds timeout,
                 std::optional<EtcdCredentials> credentials = std::nullopt,
                 std::optional<EtcdTls> tls = std::nullopt);
  ~EtcdHttpClient();
  EtcdHttpClient(const EtcdHttpClient&) = delete;
  EtcdHttpClient& operator=(const EtcdHttpClient&) = delete;

  // The body of a 200 answer. kUnavailable when no endpoint answered (naming each and why);
  // kInvalidArgument/kNotFound/kInternal with etcd's message for other statuses (4xx, 5xx:
  // etcd answered, the next endpoint would say the same); kInvalidArgument naming the user
  // when etcd refuses the credentials or the user lacks the permission.
  StatusOr<std::string> Post(std::string_view path, const std::string& body);

  // Streaming: sends the request and reads the answer's header (200 wanted), trying each
  // endpoint once from the current one.
  Status OpenStream(std::string_view path, const std::string& body);
  // The next body bytes of the open stream (possibly empty: keep reading).
  // kDeadlineExceeded when nothing came for `idle`; kUnavailable when the stream broke or
  // ended. On any error the stream is closed.
  StatusOr<std::string> ReadStream(std::chrono::milliseconds idle);
  void CloseStream();

  // Drops the token, so the next call authenticates again (a stream's body said the token is
  // no longer valid, which its header could not).
  void ForgetToken() { token_.clear(); }

  // The endpoint calls go to first (the one that answered last).
  std::string current_address() const;
  // Makes etcd's leader the endpoint calls go to first, if it is one of the endpoints (asks the
  // current one for the cluster's status and member list). Writes sent to a follower are
  // forwarded to the leader, so this saves a hop, not correctness. kNotFound when the leader
  // is not among the endpoints; other errors as Post.
  Status PreferLeader();
  // Makes the call in progress and every later call return kUnavailable "cancelled" at once.
  void Cancel();
  bool cancelled() const;

 private:
  struct Connection;
  StatusOr<std::unique_ptr<Connection>> Connect(const EtcdAddress& address);
  // Sends the request to each endpoint in turn, from the current one, until one answers:
  // `start_read(connection, handler)` starts reading the answer (all of it, or its header).
  // Returns the connection that answered (it becomes the current endpoint); kUnavailable
  // naming each endpoint tried and why it failed. Defined and used in http_client.cc only.
  template <class StartRead>
  StatusOr<std::unique_ptr<Connection>> Exchange(std::string_view path, const std::string& body,
                                                 const char* what, StartRead start_read);
  // One POST, with the token if there is one: the HTTP status and body.
  StatusOr<std::pair<unsigned, std::string>> PostOnce(std::string_view path,
                                                      const std::string& body);
  // Gets a token for credentials_ (kInvalidArgument when etcd refuses them).
  Status Authenticate();
  // What etcd's answer says of the token: true when it is missing or no longer valid.
  static bool TokenRejected(unsigned status, const std::string& body);
  // Runs the connection's io_context until `done`, the timeout or Cancel().
  Status RunUntil(Connection& c, const bool& done, std::chrono::milliseconds timeout,
                  const char* what);

  const std::vector<EtcdAddress> endpoints_;
  const std::chrono::milliseconds timeout_;
  const std::optional<EtcdCredentials> credentials_;
  std::string token_;                               // empty: none yet (or auth is off)
  std::unique_ptr<boost::asio::ssl::context> tls_;  // null: plain http
  Status tls_error_;                                // the TLS setup's, if it failed
  size_t current_ = 0;
  std::unique_ptr<Connection> stream_;

  mutable std::mutex mu_;
  bool cancelled_ = false;
  boost::asio::io_context* running_ = nullptr;  // the io_context a call is running, if any
};

}  // namespace fulcrum::etcd
