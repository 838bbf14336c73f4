#include "etcd_http_client.h"

#include <array>
#include <limits>
#include <optional>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <nlohmann/json.hpp>

#include "etcd_codec.h"

namespace fulcrum::etcd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One HTTP connection and the io_context its operations run on. Destroying it closes the
// socket and discards pending operations without running their handlers, which is why a
// connection is dropped after any failure or timeout.
struct EtcdHttpClient::Connection {
  Connection(const EtcdAddress& a, asio::ssl::context* tls) : address(a) {
    if (tls != nullptr) secure.emplace(ioc, *tls);
  }
  // Calls f with the stream HTTP goes over: the TLS one, or the plain one.
  template <class F>
  void Visit(F&& f) {
    if (secure) {
      f(*secure);
    } else {
      f(plain);
    }
  }
  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : plain; }

  EtcdAddress address;
  asio::io_context ioc;  // first: destroyed last
  beast::tcp_stream plain{ioc};
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;  // with TLS
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::buffer_body>> parser;  // streams only
};

namespace {

http::request<http::string_body> MakeRequest(const EtcdAddress& to, std::string_view path,
                                             const std::string& body, const std::string& token) {
  http::request<http::string_body> req{http::verb::post, std::string(path), 11};
  req.set(http::field::host, to.ToString());
  // etcd's gateway takes the token as it is, no scheme (gRPC's "token" metadata).
  if (!token.empty()) req.set(http::field::authorization, token);
  req.set(http::field::content_type, "application/json");
  req.keep_alive(false);
  req.body() = body;
  req.prepare_payload();
  return req;
}

StatusCode FromHttpStatus(unsigned status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 404:
      return StatusCode::kNotFound;
    case 503:
    case 504:
      return StatusCode::kUnavailable;
    default:
      return StatusCode::kInternal;
  }
}

}  // namespace

EtcdHttpClient::EtcdHttpClient(std::vector<EtcdAddress> endpoints,
                               std::chrono::milliseconds timeout,
                               std::optional<EtcdCredentials> credentials,
                               std::optional<EtcdTls> tls)
    : endpoints_(std::move(endpoints)), timeout_(timeout), credentials_(std::move(credentials)) {
  if (!tls) return;
  auto context = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  beast::error_code ec;
  const std::string* file = &tls->ca_file;
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (!ec) context->load_verify_file(tls->ca_file, ec);
  if (!ec && !tls->cert_file.empty()) {
    file = &tls->cert_file;
    context->use_certificate_chain_file(tls->cert_file, ec);
    if (!ec) {
      file = &tls->key_file;
      context->use_private_key_file(tls->key_file, asio::ssl::context::pem, ec);
    }
  }
  if (ec) {
    tls_error_ = Status::Error(StatusCode::kInvalidArgument,
                               "etcd TLS: cannot load " + *file + ": " + ec.message());
    return;
  }
  tls_ = std::move(context);
}

EtcdHttpClient::~EtcdHttpClient() = default;

std::string EtcdHttpClient::current_address() const {
  return endpoints_.empty() ? "(no etcd endpoint)" : endpoints_[current_].ToString();
}

Status EtcdHttpClient::PreferLeader() {
  if (endpoints_.size() < 2) return Status::Ok();
  // Member IDs are uint64: the gateway writes them as strings.
  const auto id = [](const nlohmann::json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  StatusOr<std::string> status = Post("/v3/maintenance/status", "{}");
  if (!status.ok()) return status.status();
  const nlohmann::json s = nlohmann::json::parse(*status, nullptr, false);
  if (s.is_discarded() || !s.contains("leader") || !s.contains("header") ||
      !s["header"].contains("member_id")) {
    return Status::Error(StatusCode::kUnavailable, "etcd's status names no leader: " + *status);
  }
  const std::string leader = id(s["leader"]);
  if (leader == id(s["header"]["member_id"])) return Status::Ok();  // already there
  StatusOr<std::string> list = Post("/v3/cluster/member/list", "{}");
  if (!list.ok()) return list.status();
  const nlohmann::json members = nlohmann::json::parse(*list, nullptr, false);
  if (members.is_discarded() || !members.contains("members")) {
    return Status::Error(StatusCode::kUnavailable, "etcd's member list is unreadable: " + *list);
  }
  for (const nlohmann::json& m : members["members"]) {
    if (!m.contains("ID") || id(m["ID"]) != leader || !m.contains("clientURLs")) continue;
    for (const nlohmann::json& url : m["clientURLs"]) {
      if (!url.is_string()) continue;
      std::string host_port = url.get<std::string>();
      if (const size_t scheme = host_port.find("://"); scheme != std::string::npos) {
        host_port = host_port.substr(scheme + 3);
      }
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        if (endpoints_[i].ToString() == host_port) {
          current_ = i;
          return Status::Ok();
        }
      }
    }
  }
  return Status::Error(StatusCode::kNotFound,
                       "etcd's leader (member " + leader + ") is not among the endpoints");
}

void EtcdHttpClient::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (running_ != nullptr) running_->stop();
}

bool EtcdHttpClient::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

Status EtcdHttpClient::RunUntil(Connection& c, const bool& done, std::chrono::milliseconds timeout,
                                const char* what) {
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return Status::Error(StatusCode::kUnavailable, "cancelled");
    c.ioc.restart();
    running_ = &c.ioc;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done && !c.ioc.stopped() && std::chrono::steady_clock::now() < deadline) {
    c.ioc.run_one_until(deadline);
  }
  std::lock_guard lock(mu_);
  running_ = nullptr;
  if (done) return Status::Ok();
  if (cancelled_) return Status::Error(StatusCode::kUnavailable, "cancelled");
  return Status::Error(StatusCode::kDeadlineExceeded, std::string(what) + " timed out after " +
                                                          std::to_string(timeout.count()) + " ms");
}

StatusOr<std::unique_ptr<EtcdHttpClient::Connection>> EtcdHttpClient::Connect(
    const EtcdAddress& address) {
  if (!tls_error_.ok()) return tls_error_;
  auto c = std::make_unique<Connection>(address, tls_.get());
  if (c->secure) {
    // Check the certificate names this endpoint (a DNS name or an IP address), and tell a
    // name to the server (SNI) so one serving several can pick the right certificate.
    c->secure->set_verify_callback(asio::ssl::host_name_verification(address.host));
    beast::error_code parse_error;
    asio::ip::make_address(address.host, parse_error);
    if (parse_error &&
        !SSL_set_tlsext_host_name(c->secure->native_handle(), address.host.c_str())) {
      return Status::Error(StatusCode::kInvalidArgument, "etcd TLS: bad host name " + address.host);
    }
  }
  tcp::resolver resolver(c->ioc);
  beast::error_code ec;
  bool done = false;
  const char* step = "connect";
  auto finish = [&](beast::error_code e) {
    ec = e;
    done = true;
  };
  resolver.async_resolve(address.host, std::to_string(address.port), tcp::resolver::numeric_service,
                         [&](beast::error_code e, tcp::resolver::results_type results) {
                           if (e) return finish(e);
                           c->tcp().async_connect(
                               results, [&](beast::error_code e2, const tcp::endpoint&) {
                                 if (e2 || !c->secure) return finish(e2);
                                 step = "TLS handshake";
                                 c->secure->async_handshake(asio::ssl::stream_base::client, finish);
                               });
                         });
  Status s = RunUntil(*c, done, timeout_, "connect");
  if (!s.ok()) return s;
  if (ec) return Status::Error(StatusCode::kUnavailable, std::string(step) + ": " + ec.message());
  return c;
}

template <class StartRead>
StatusOr<std::unique_ptr<EtcdHttpClient::Connection>> EtcdHttpClient::Exchange(
    std::string_view path, const std::string& body, const char* what, StartRead start_read) {
  if (!tls_error_.ok()) return tls_error_;  // no endpoint would do better
  std::string failures;
  for (size_t i = 0; i < endpoints_.size(); ++i) {
    const size_t index = (current_ + i) % endpoints_.size();
    const EtcdAddress& to = endpoints_[index];
    auto fail = [&](const std::string& why) {
      failures += (failures.empty() ? "" : "; ") + to.ToString() + ": " + why;
    };
    StatusOr<std::unique_ptr<Connection>> conn = Connect(to);
    if (!conn.ok()) {
      if (cancelled()) return conn.status();
      fail(conn.status().message());
      continue;
    }
    Connection& c = **conn;
    http::request<http::string_body> req = MakeRequest(to, path, body, token_);
    beast::error_code ec;
    bool done = false;
    auto finish = [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    };
    c.Visit([&](auto& stream) {
      http::async_write(stream, req, [&](beast::error_code e, size_t n) {
        if (e) return finish(e, n);
        start_read(c, finish);
      });
    });
    Status s = RunUntil(c, done, timeout_, what);
    if (!s.ok() || ec) {
      conn.value().reset();  // discards the pending operations before what they point to
      if (cancelled()) return Status::Error(StatusCode::kUnavailable, "cancelled");
      fail(s.ok() ? ec.message() : s.message());
      continue;
    }
    current_ = index;
    return conn;
  }
  return Status::Error(StatusCode::kUnavailable, "etcd unreachable (" + failures + ")");
}

StatusOr<std::pair<unsigned, std::string>> EtcdHttpClient::PostOnce(std::string_view path,
                                                                    const std::string& body) {
  std::optional<http::response_parser<http::string_body>> parser;
  StatusOr<std::unique_ptr<Connection>> conn =
      Exchange(path, body, "request", [&](Connection& c, auto done) {
        parser.emplace();  // a fresh one for each endpoint tried
        parser->body_limit(64u << 20);
        c.Visit([&](auto& stream) { http::async_read(stream, c.buffer, *parser, done); });
      });
  if (!conn.ok()) return conn.status();
  return std::make_pair(parser->get().result_int(), std::move(parser->get().body()));
}

bool EtcdHttpClient::TokenRejected(unsigned status, const std::string& body) {
  // An expired or unknown token is gRPC's Unauthenticated (401); no token at all, "user name
  // is empty" (400).
  return status == 401 || body.find("invalid auth token") != std::string::npos ||
         body.find("user name is empty") != std::string::npos;
}

Status EtcdHttpClient::Authenticate() {
  token_.clear();
  nlohmann::json request = {{"name", credentials_->user}, {"password", credentials_->password}};
  StatusOr<std::pair<unsigned, std::string>> answer =
      PostOnce("/v3/auth/authenticate", request.dump());
  if (!answer.ok()) return answer.status();
  const auto& [status, body] = *answer;
  if (status != 200) {
    return Status::Error(StatusCode::kInvalidArgument,
                         "etcd at " + current_address() + " refused the credentials of user '" +
                             credentials_->user + "': " + ErrorMessage(body));
  }
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object() || !parsed.contains("token") || !parsed["token"].is_string() ||
      parsed["token"].get<std::string>().empty()) {
    return Status::Error(StatusCode::kInternal,
                         "etcd at " + current_address() + " answered authenticate without a token");
  }
  token_ = parsed["token"].get<std::string>();
  return Status::Ok();
}

StatusOr<std::string> EtcdHttpClient::Post(std::string_view path, const std::string& body) {
  if (credentials_ && token_.empty()) {
    Status s = Authenticate();
    if (!s.ok()) return s;
  }
  StatusOr<std::pair<unsigned, std::string>> answer = PostOnce(path, body);
  if (answer.ok() && credentials_ && TokenRejected(answer->first, answer->second)) {
    Status s = Authenticate();  // the token expired (or etcd forgot it): once more, fresh
    if (!s.ok()) return s;
    answer = PostOnce(path, body);
  }
  if (!answer.ok()) return answer.status();
  auto& [status, text] = *answer;
  if (status == 200) return std::move(text);
  const std::string who = credentials_ && (status == 401 || status == 403)
                              ? " (user '" + credentials_->user + "')"
                              : "";
  return Status::Error(
      status == 401 || status == 403 ? StatusCode::kInvalidArgument : FromHttpStatus(status),
      "etcd at " + current_address() + " answered " + std::string(path) + " with " +
          std::to_string(status) + who + ": " + ErrorMessage(text));
}

Status EtcdHttpClient::OpenStream(std::string_view path, const std::string& body) {
  CloseStream();
  if (credentials_ && token_.empty()) {
    Status s = Authenticate();
    if (!s.ok()) return s;
  }
  for (int attempt = 0;; ++attempt) {
    StatusOr<std::unique_ptr<Connection>> conn =
        Exchange(path, body, "watch request", [](Connection& c, auto done) {
          c.parser.emplace();
          c.parser->body_limit(std::numeric_limits<std::uint64_t>::max());
          c.Visit(
              [&](auto& stream) { http::async_read_header(stream, c.buffer, *c.parser, done); });
        });
    if (!conn.ok()) return conn.status();
    const unsigned status = (*conn)->parser->get().result_int();
    if (status == 200) {
      stream_ = std::move(conn).value();
      return Status::Ok();
    }
    // The header says 401 for an expired token; the gateway's error body is not read here.
    if (credentials_ && status == 401 && attempt == 0) {
      Status s = Authenticate();
      if (!s.ok()) return s;
      continue;
    }
    return Status::Error(
        status == 401 || status == 403 ? StatusCode::kInvalidArgument : FromHttpStatus(status),
        "etcd at " + (*conn)->address.ToString() + " answered " + std::string(path) + " with " +
            std::to_string(status));
  }
}

StatusOr<std::string> EtcdHttpClient::ReadStream(std::chrono::milliseconds idle) {
  if (!stream_) return Status::Error(StatusCode::kUnavailable, "no stream open");
  Connection& c = *stream_;
  if (c.parser->is_done()) {
    CloseStream();
    return Status::Error(StatusCode::kUnavailable, "etcd ended the stream");
  }
  std::array<char, 16384> chunk;
  auto& body = c.parser->get().body();
  body.data = chunk.data();
  body.size = chunk.size();
  beast::error_code ec;
  bool done = false;
  c.Visit([&](auto& stream) {
    http::async_read_some(stream, c.buffer, *c.parser, [&](beast::error_code e, size_t) {
      ec = e;
      done = true;
    });
  });
  Status s = RunUntil(c, done, idle, "watch read");
  if (!s.ok()) {
    CloseStream();
    return s;
  }
  if (ec == http::error::need_buffer) ec = {};
  if (ec) {
    CloseStream();
    return Status::Error(StatusCode::kUnavailable, "stream broke: " + ec.message());
  }
  return std::string(chunk.data(), chunk.size() - body.size);
}

void EtcdHttpClient::CloseStream() { stream_.reset(); }

}  // namespace fulcrum::etcd
