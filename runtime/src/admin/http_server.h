// HttpServer: the admin pages' HTTP/1.1 listener (Boost.Beast, one I/O thread), built to be
// left open on a production process: it answers GET and HEAD only, and a bad or hostile
// client gets a 4xx and a closed connection, never a stuck thread:
//
//   - a request must arrive whole within request_timeout (a slowloris gets cut off; an idle
//     keep-alive connection too), and a reply must be taken within write_timeout;
//   - request headers beyond max_header_bytes: 431; a body beyond max_body_bytes: 413;
//     unparsable: 400; another method: 405 (with Allow); all of these close the connection;
//   - beyond max_connections open at once, a new connection gets 503 and is closed at once.
//
//   HttpServer server({.host = "127.0.0.1", .port = 0},
//                     [](const HttpRequest& r) { return HttpResponse{.body = "hi"}; });
//   CHECK(server.Start().ok());   // server.port(): the port the OS picked
//
// Handlers run on the I/O thread, one at a time: they must be quick (they format what is in
// memory). Why not prometheus-cpp's Exposer: its 1.0.1 API serves only collectables (no
// handler for other pages), and its civetweb server gives each connection a thread from a
// small pool, so a few slow clients can occupy all of them.
//
// Thread-safe: Start once, Stop from any thread (also called by the destructor).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "fulcrum/admin.h"
#include "fulcrum/status.h"

namespace fulcrum::internal {

using HttpHandler = std::function<AdminResponse(const AdminRequest&)>;

class HttpServer {
 public:
  HttpServer(AdminOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  Status Start();
  void Stop();
  int port() const { return port_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<int> port_{0};
  std::thread thread_;
};

}  // namespace fulcrum::internal
