#include "admin/http_server.h"

#include <glog/logging.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <list>
#include <optional>

namespace fulcrum::internal {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

AdminResponse Plain(int status, std::string body) {
  AdminResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// What a failed read earns: a reply, or nothing (the peer left or stalled).
bool ErrorReply(const beast::error_code& ec, AdminResponse* out) {
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    *out = Plain(431, "request headers too large\n");
    return true;
  }
  if (ec == http::error::body_limit) {
    *out = Plain(413, "request body too large\n");
    return true;
  }
  if (ec == beast::error::timeout || ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == net::error::operation_aborted ||
      ec == http::error::partial_message) {
    return false;
  }
  if (ec.category() == http::make_error_code(http::error::bad_target).category()) {
    // Any other parse error: a bad request line, method, header or chunk.
    *out = Plain(400, "bad request\n");
    return true;
  }
  return false;
}

}  // namespace

struct HttpServer::Impl {
  class Session;

  Impl(AdminOptions o, HttpHandler h) : options(std::move(o)), handler(std::move(h)) {}

  void Accept();
  void Refuse(tcp::socket socket);

  const AdminOptions options;
  const HttpHandler handler;
  std::atomic<int> sessions{0};
  std::list<std::weak_ptr<Session>> open;  // only the I/O thread touches it
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer retry{ioc};  // after a failed accept (out of descriptors)
};

class HttpServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, Impl* server)
      : stream_(std::move(socket)),
        buffer_(server->options.max_header_bytes + server->options.max_body_bytes),
        server_(server) {
    server_->sessions.fetch_add(1);
  }
  ~Session() { server_->sessions.fetch_sub(1); }

  void Start() { Read(); }
  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(server_->options.max_body_bytes);
    stream_.expires_after(server_->options.request_timeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) {
      AdminResponse reply;
      if (ErrorReply(ec, &reply)) {
        Write(reply, /*head=*/false, /*keep_alive=*/false, /*extra_allow=*/false);
      } else {
        Close();
      }
      return;
    }
    const auto& req = parser_->get();
    const bool head = req.method() == http::verb::head;
    if (req.method() != http::verb::get && !head) {
      Write(Plain(405, "only GET and HEAD\n"), false, false, /*extra_allow=*/true);
      return;
    }
    AdminRequest request;
    request.method = head ? "HEAD" : "GET";
    const std::string_view target(req.target().data(), req.target().size());
    const size_t q = target.find('?');
    request.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) request.query = std::string(target.substr(q + 1));
    AdminResponse reply;
    try {
      reply = server_->handler(request);
    } catch (const std::exception& e) {
      LOG(WARNING) << "admin page " << request.path << " failed: " << e.what();
      reply = Plain(500, "internal error\n");
    }
    Write(reply, head, req.keep_alive(), false);
  }

  void Write(const AdminResponse& reply, bool head, bool keep_alive, bool extra_allow) {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(reply.status));
    res->set(http::field::server, "fulcrum-admin");
    res->set(http::field::content_type, reply.content_type);
    res->set(http::field::cache_control, "no-store");
    res->set("X-Content-Type-Options", "nosniff");
    if (extra_allow) res->set(http::field::allow, "GET, HEAD");
    res->keep_alive(keep_alive);
    res->body() = reply.body;
    res->prepare_payload();
    if (head) res->body().clear();  // Content-Length stays: what GET would send
    stream_.expires_after(server_->options.write_timeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res, keep_alive](beast::error_code ec, size_t) {
                        if (ec || !keep_alive) {
                          self->Close();
                          return;
                        }
                        self->Read();
                      });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Impl* server_;
};

void HttpServer::Impl::Accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {
      // Out of descriptors, say: try again a little later instead of spinning.
      LOG_EVERY_N(WARNING, 100) << "admin listener: accept failed: " << ec.message();
      retry.expires_after(std::chrono::milliseconds(50));
      retry.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor.is_open()) Accept();
      });
      return;
    }
    if (sessions.load() >= options.max_connections) {
      Refuse(std::move(socket));
    } else {
      auto session = std::make_shared<Session>(std::move(socket), this);
      open.remove_if([](const std::weak_ptr<Session>& s) { return s.expired(); });
      open.push_back(session);
      session->Start();
    }
    Accept();
  });
}

// Over the connection limit: a short 503 if the socket takes it at once, then close. Never
// waits for the peer.
void HttpServer::Impl::Refuse(tcp::socket socket) {
  static constexpr char kBusy[] =
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 23\r\n"
      "Connection: close\r\n\r\ntoo many connections\r\n\r\n";
  beast::error_code ignored;
  socket.non_blocking(true, ignored);
  socket.send(net::buffer(kBusy, sizeof(kBusy) - 1), 0, ignored);
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

HttpServer::HttpServer(AdminOptions options, HttpHandler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  beast::error_code ec;
  const auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "admin host '" + impl_->options.host + "': " + ec.message());
  }
  if (impl_->options.port < 0 || impl_->options.port > 65535) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "admin port " + std::to_string(impl_->options.port) + " out of range");
  }
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(impl_->options.port));
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    beast::error_code ignored;
    acceptor.close(ignored);
    return Status::Error(StatusCode::kUnavailable, "admin listener on " + impl_->options.host +
                                                       ":" + std::to_string(impl_->options.port) +
                                                       ": " + ec.message());
  }
  port_ = acceptor.local_endpoint().port();
  impl_->Accept();
  thread_ = std::thread([this] {
    try {
      impl_->ioc.run();
    } catch (const std::exception& e) {
      LOG(ERROR) << "admin listener stopped: " << e.what();
    }
  });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!thread_.joinable()) return;
  net::post(impl_->ioc, [impl = impl_.get()] {
    beast::error_code ignored;
    impl->acceptor.close(ignored);
    impl->retry.cancel();
    for (const auto& weak : impl->open) {
      if (auto s = weak.lock()) s->Close();
    }
    impl->ioc.stop();
  });
  thread_.join();
  port_ = 0;
}

}  // namespace fulcrum::internal
