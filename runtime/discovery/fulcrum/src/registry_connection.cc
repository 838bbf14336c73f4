#include "fulcrum/discovery/registry_connection.h"

#include "fulcrum/framed_transport.h"

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TSSLSocket.h>
#include <thrift/transport/TSocket.h>

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <map>
#include <mutex>

namespace fulcrum::registry_client {

using apache::thrift::transport::TSocket;
using apache::thrift::transport::TSSLSocketFactory;
using apache::thrift::transport::TTransport;
using apache::thrift::transport::TTransportException;

ScopedSigpipeBlock::ScopedSigpipeBlock() {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  was_blocked_ = sigismember(&old, SIGPIPE) == 1;
}

ScopedSigpipeBlock::~ScopedSigpipeBlock() {
  if (was_blocked_) return;
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigset_t pending;
  sigpending(&pending);
  if (sigismember(&pending, SIGPIPE) == 1) {
    const timespec zero{0, 0};
    sigtimedwait(&pipe_set, nullptr, &zero);  // discard the one our write raised
  }
  pthread_sigmask(SIG_UNBLOCK, &pipe_set, nullptr);
}

void BlockSigpipeInThisThread() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
}

Status ParseRegistryAddress(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "registry address '" + address + "' is not host:port");
  }
  std::string h = address.substr(0, colon);
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  const std::string p = address.substr(colon + 1);
  char* end = nullptr;
  const long n = std::strtol(p.c_str(), &end, 10);
  if (*end != '\0' || n <= 0 || n > 65535) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "registry address '" + address + "' has a bad port");
  }
  *host = h;
  *port = static_cast<int>(n);
  return Status::Ok();
}

namespace {

// One TSSLSocketFactory per CA file: creating one initialises OpenSSL's context.
std::shared_ptr<TSSLSocketFactory> ClientSslFactory(const std::string& ca_file) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<TSSLSocketFactory>> factories;
  std::lock_guard lock(mu);
  auto& f = factories[ca_file];
  if (!f) {
    f = std::make_shared<TSSLSocketFactory>();
    f->loadTrustedCertificates(ca_file.c_str());
    f->authenticate(true);
  }
  return f;
}

}  // namespace

StatusOr<std::unique_ptr<RegistryConnection>> RegistryConnection::Open(
    const ConnectionOptions& options) {
  ScopedSigpipeBlock no_sigpipe;
  std::unique_ptr<RegistryConnection> conn(new RegistryConnection());
  conn->options_ = options;
  try {
    if (options.tls_ca_file.empty()) {
      conn->socket_ = std::make_shared<TSocket>(options.host, options.port);
    } else {
      conn->socket_ =
          ClientSslFactory(options.tls_ca_file)->createSocket(options.host, options.port);
    }
    conn->socket_->setConnTimeout(options.connect_timeout_ms);
    conn->socket_->setRecvTimeout(options.recv_timeout_ms);
    conn->socket_->setSendTimeout(options.send_timeout_ms);
    conn->transport_ = FramedTransportFactory(options.max_frame_size).getTransport(conn->socket_);
    conn->client_ = std::make_unique<thrift::RegistryClient>(
        std::make_shared<apache::thrift::protocol::TBinaryProtocol>(conn->transport_));
    conn->transport_->open();
    conn->fd_ = static_cast<int>(conn->socket_->getSocketFD());
  } catch (const apache::thrift::TException& e) {
    return Status::Error(StatusCode::kUnavailable,
                         "cannot reach registry at " + conn->address() + ": " + e.what());
  }
  return conn;
}

RegistryConnection::~RegistryConnection() {
  ScopedSigpipeBlock no_sigpipe;  // TLS close writes close_notify to a peer that may be gone
  try {
    if (transport_) transport_->close();
  } catch (const apache::thrift::TException&) {
    // Closing a broken connection: nothing left to do.
  }
}

void RegistryConnection::Interrupt() {
  const int fd = fd_.load();
  if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void RegistryConnection::SetRecvTimeout(int ms) { socket_->setRecvTimeout(ms); }

std::string RegistryConnection::address() const {
  return options_.host + ":" + std::to_string(options_.port);
}

}  // namespace fulcrum::registry_client
