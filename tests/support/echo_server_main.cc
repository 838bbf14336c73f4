// fulcrum_test_echo_server: the Echo service in its own process, for tests that SIGKILL,
// SIGSTOP or SIGTERM a server by PID.
//
//   fulcrum_test_echo_server --id=a --port=0 --protocol=compact
//   LISTENING 40123        <- on stdout once the port accepts
//
// --delay_us makes every echo() call sleep that long before answering: a slow node for the
// balancing benchmarks (fulcrum_load --slow_servers). --stock_thrift serves the same handler
// with Apache Thrift's own TThreadPoolServer (TServerSocket, TFramedTransport, TBinaryProtocol;
// no Fulcrum server code): raw Thrift's server in fulcrum_load --separate.
//
// SIGTERM or SIGINT: stops gracefully (in-flight calls finish, up to --drain_timeout_ms) and
// exits 0. Bad flags: a message on stderr and exit status 2.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <gflags/gflags.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TThreadPoolServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TServerSocket.h>

#include "fulcrum/command_line.h"
#include "fulcrum/server.h"
#include "support/echo_handler.h"

DEFINE_string(host, "127.0.0.1", "address to listen on");
DEFINE_int32(port, 0, "port to listen on; 0 lets the OS pick (printed as LISTENING <port>)");
DEFINE_string(id, "", "server id returned by whoami() and slow(); default echo-<pid>");
DEFINE_string(protocol, "binary", "binary or compact");
DEFINE_string(server_type, "threaded", "threaded or nonblocking");
DEFINE_int32(drain_timeout_ms, 10000, "how long a graceful stop waits for calls in flight");
DEFINE_bool(metrics, true, "record per-method metrics (ServerOptions::metrics)");
DEFINE_bool(batch_reads, true, "threaded server: several requests per recv() (ServerOptions)");
DEFINE_int32(delay_us, 0, "sleep this many microseconds in every echo() call (a slow node)");
DEFINE_bool(stock_thrift, false,
            "serve with Apache Thrift's TThreadPoolServer (framed, binary, 32 workers) instead "
            "of fulcrum::Server (--protocol, --server_type, --batch_reads, --metrics and "
            "--drain_timeout_ms do not apply)");

namespace {

int Usage(const std::string& message) {
  std::fprintf(stderr, "fulcrum_test_echo_server: %s\n", message.c_str());
  return 2;
}

// Signals when the stock server listens.
class Ready final : public apache::thrift::server::TServerEventHandler {
 public:
  void preServe() override { listening_.set_value(); }
  std::future<void> Listening() { return listening_.get_future(); }

 private:
  std::promise<void> listening_;
};

// --stock_thrift: Apache Thrift's TThreadPoolServer as a user of stock Thrift would write it.
int ServeStock(std::shared_ptr<fulcrum::testing::EchoHandler> handler, sigset_t* stop_signals) {
  namespace at = apache::thrift;
  auto socket = std::make_shared<at::transport::TServerSocket>(FLAGS_host, FLAGS_port);
  auto workers = at::concurrency::ThreadManager::newSimpleThreadManager(32);
  workers->threadFactory(std::make_shared<at::concurrency::ThreadFactory>());
  workers->start();
  at::server::TThreadPoolServer server(
      std::make_shared<fulcrum::test::EchoProcessor>(handler), socket,
      std::make_shared<at::transport::TFramedTransportFactory>(),
      std::make_shared<at::protocol::TBinaryProtocolFactory>(), workers);
  auto ready = std::make_shared<Ready>();
  std::future<void> listening = ready->Listening();
  server.setServerEventHandler(ready);
  std::thread serving([&server] { server.serve(); });
  if (listening.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "fulcrum_test_echo_server: the stock server did not start\n");
    std::_Exit(1);
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(socket->getSocketFD(), reinterpret_cast<sockaddr*>(&addr), &len);
  const uint16_t port = addr.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  std::printf("LISTENING %u\n", static_cast<unsigned>(port));
  std::fflush(stdout);
  int sig = 0;
  while (sigwait(stop_signals, &sig) != 0) {
  }
  server.stop();
  serving.join();
  LOG(INFO) << "stock server: signal " << sig << ", served " << handler->calls() << " call(s)";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: fulcrum_test_echo_server [flags]\n  The Echo test service.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;
  if (argc > 1) return Usage(std::string("unexpected argument '") + argv[1] + "'");

  fulcrum::StatusOr<fulcrum::Protocol> protocol = fulcrum::ParseProtocol(FLAGS_protocol);
  if (!protocol.ok()) return Usage("--protocol: " + protocol.status().message());
  fulcrum::StatusOr<fulcrum::ServerType> type = fulcrum::ParseServerType(FLAGS_server_type);
  if (!type.ok()) return Usage("--server_type: " + type.status().message());
  if (FLAGS_port < 0 || FLAGS_port > 65535) {
    return Usage("--port: " + std::to_string(FLAGS_port) + " is not in [0, 65535]");
  }
  if (FLAGS_drain_timeout_ms < 0) return Usage("--drain_timeout_ms must be >= 0");
  if (FLAGS_delay_us < 0) return Usage("--delay_us must be >= 0");

  // Block the stop signals before any thread starts, so every thread inherits the mask and
  // only the sigwait() below ever sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string id = FLAGS_id.empty() ? "echo-" + std::to_string(getpid()) : FLAGS_id;
  fulcrum::ServerOptions options;
  options.host = FLAGS_host;
  options.port = static_cast<uint16_t>(FLAGS_port);
  options.protocol = protocol.value();
  options.type = type.value();
  options.drain_timeout = std::chrono::milliseconds(FLAGS_drain_timeout_ms);
  options.metrics = FLAGS_metrics;
  options.batch_reads = FLAGS_batch_reads;
  auto handler = std::make_shared<fulcrum::testing::EchoHandler>(
      id, std::chrono::microseconds(FLAGS_delay_us));
  if (FLAGS_stock_thrift) return ServeStock(handler, &stop_signals);
  fulcrum::Server server(std::make_shared<fulcrum::test::EchoProcessor>(handler), options);
  fulcrum::Status started = server.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "fulcrum_test_echo_server: %s\n", started.ToString().c_str());
    return 1;
  }

  std::promise<int> stop;
  std::thread signal_waiter([&stop, &stop_signals] {
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    stop.set_value(sig);
  });
  std::printf("LISTENING %u\n", static_cast<unsigned>(server.port()));
  std::fflush(stdout);

  const int sig = stop.get_future().get();
  LOG(INFO) << id << ": signal " << sig << ", stopping";
  signal_waiter.join();
  server.Stop();
  LOG(INFO) << id << ": served " << handler->calls() << " call(s)";
  return 0;
}
