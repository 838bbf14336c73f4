// A connection to fulcrum-registry for its clients (fulcrumctl, the fulcrum:// registrar and
// resolver, tools of one's own): framed transport (fulcrum::FramedTransport, bounded frames),
// binary protocol, timeouts, optional TLS. Part of Fulcrum::fulcrum; the API it speaks is the
// registry IDL (idl/registry.thrift, generated as "fulcrum/idl/Registry.h").
//
//   auto conn = RegistryConnection::Open({.host = "127.0.0.1", .port = 7000});
//   if (conn.ok()) conn.value()->client().lookup(snapshot, "calc");
//
// RegistryConnection is thread-compatible (one thread at a time, like Thrift's clients).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include "fulcrum/idl/Registry.h"
#include "fulcrum/status.h"

namespace fulcrum::registry_client {

// The registry's API (idl/registry.thrift), as its clients name it.
namespace thrift = ::fulcrum::registry::thrift;

struct ConnectionOptions {
  std::string host = "127.0.0.1";
  int port = 0;
  int connect_timeout_ms = 1000;
  // Covers the longest watch the caller makes plus slack.
  int recv_timeout_ms = 5000;
  int send_timeout_ms = 5000;
  // TLS: a CA file to verify the registry's certificate with. Empty: plain TCP.
  std::string tls_ca_file;
  uint32_t max_frame_size = 16u << 20;
};

// OpenSSL writes with write(2), so a peer that closed a TLS connection raises SIGPIPE, which
// kills a process that has not ignored it. Registry clients hold one of these around TLS I/O
// on threads they do not own: SIGPIPE is blocked for the scope and one raised meanwhile is
// discarded. Their own threads call BlockSigpipeInThisThread() once instead.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock();
  ~ScopedSigpipeBlock();
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  bool was_blocked_ = false;
};
void BlockSigpipeInThisThread();

// "host:port" or "[v6]:port" -> host, port.
Status ParseRegistryAddress(const std::string& address, std::string* host, int* port);

class RegistryConnection {
 public:
  // Connects; kUnavailable saying "cannot reach registry at host:port: why" on failure.
  static StatusOr<std::unique_ptr<RegistryConnection>> Open(const ConnectionOptions& options);
  ~RegistryConnection();

  thrift::RegistryClient& client() { return *client_; }
  void SetRecvTimeout(int ms);
  // Makes a call blocked in another thread fail at once (shutdown(2) on the socket; the
  // descriptor stays open until this object is destroyed). Thread-safe.
  void Interrupt();
  std::string address() const;

 private:
  RegistryConnection() = default;
  ConnectionOptions options_;
  std::shared_ptr<apache::thrift::transport::TSocket> socket_;
  std::shared_ptr<apache::thrift::transport::TTransport> transport_;
  std::unique_ptr<thrift::RegistryClient> client_;
  std::atomic<int> fd_{-1};
};

}  // namespace fulcrum::registry_client
