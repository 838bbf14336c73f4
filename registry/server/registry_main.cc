// fulcrum-registry: the Fulcrum service registry daemon. See registry/server/daemon.h.
//
//   fulcrum-registry --port=7000 --data_dir=/var/lib/fulcrum-registry
//   --token_file=/etc/fulcrum/token
//
// Prints "LISTENING <port>" on stdout once it accepts connections (tests use --port=0), and
// with --admin_port "ADMIN <port>" once its admin pages (/status, /metrics, /healthz, /readyz,
// /flags; fulcrum/admin.h) are served.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <csignal>
#include <cstdio>

#include "fulcrum/admin.h"
#include "fulcrum/command_line.h"
#include "server/daemon.h"
#include "server/status_page.h"

DEFINE_string(host, "127.0.0.1", "Address to listen on");
DEFINE_int32(port, 7000, "Port to listen on; 0 picks a free one (printed as LISTENING <port>)");
DEFINE_string(data_dir, "", "Directory holding the durable admin state (required)");
DEFINE_int32(heartbeat_interval_ms, 500, "Heartbeat interval the registry asks servers for");
DEFINE_int32(heartbeat_timeout_ms, 1500,
             "An instance with no heartbeat for this long is marked DOWN");
DEFINE_int32(down_ttl_ms, 300000, "A DOWN instance is forgotten after this long");
DEFINE_int32(max_watch_wait_ms, 30000, "Cap on a watch's long-poll wait");
DEFINE_int32(idle_timeout_ms, 60000,
             "Close a connection idle, or stalled mid-frame, for this long");
DEFINE_int32(max_frame_bytes, 1 << 20, "Largest request frame accepted");
DEFINE_int64(max_connections, 20000, "Most connections served at once");
DEFINE_int32(ms_heartbeat_interval_ms, 100,
             "Heartbeat interval the registry asks master-slave instances for");
DEFINE_int32(master_lease_ms, 600, "How long after sending a heartbeat a master may admit writes");
DEFINE_int32(promotion_delay_ms, 800,
             "A master silent for this long is replaced; must be greater than --master_lease_ms");
DEFINE_int32(switchover_timeout_ms, 5000,
             "A planned switchover (fulcrumctl promote) not done by then is abandoned");
DEFINE_string(token_file, "",
              "File holding the token registration and admin calls must present (empty: open)");
DEFINE_int32(heartbeat_port, -1,
             "Second port serving only register/heartbeat/deregister (nonblocking, cheaper per "
             "heartbeat), named in every lease; 0 picks a free one; -1: off (all on --port). "
             "Off when TLS is on. Use with --heartbeat_realtime (see registry/README.md)");
DEFINE_int32(heartbeat_io_threads, 1, "I/O threads of the heartbeat port (handlers run inline)");
DEFINE_bool(heartbeat_realtime, false,
            "Run the heartbeat port's I/O threads SCHED_FIFO (needs CAP_SYS_NICE) so busy "
            "watcher threads cannot starve heartbeats");
DEFINE_string(tls_cert_file, "", "PEM certificate: serve TLS (needs --tls_key_file)");
DEFINE_string(tls_key_file, "", "PEM private key for --tls_cert_file");
DEFINE_int32(admin_port, -1,
             "Admin pages (/status, /metrics, /healthz, /readyz, /flags) on this port; 0 picks a "
             "free one (printed as ADMIN <port>); -1: off");
DEFINE_string(admin_host, "127.0.0.1",
              "Address of the admin pages; they are unauthenticated and read-only: keep them on "
              "loopback or behind an authenticating proxy");

namespace {

volatile std::sig_atomic_t stop_requested = 0;
void OnSignal(int) { stop_requested = 1; }

}  // namespace

int main(int argc, char** argv) {
  fulcrum::ParseCommandLine(&argc, &argv,
                            "usage: fulcrum-registry --data_dir=DIR [--port=N] [--token_file=F] "
                            "[flags]\n  The Fulcrum service registry daemon.");
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  if (FLAGS_data_dir.empty()) {
    LOG(ERROR) << "--data_dir is required: admin state must survive restarts";
    return 2;
  }
  if (FLAGS_heartbeat_interval_ms <= 0 ||
      FLAGS_heartbeat_timeout_ms <= FLAGS_heartbeat_interval_ms) {
    LOG(ERROR) << "--heartbeat_timeout_ms must be greater than --heartbeat_interval_ms > 0";
    return 2;
  }
  if (FLAGS_heartbeat_port < -1 || FLAGS_heartbeat_port > 65535) {
    LOG(ERROR) << "--heartbeat_port must be -1 (off), 0 (any free port) or a port number";
    return 2;
  }
  if (FLAGS_promotion_delay_ms <= FLAGS_master_lease_ms) {
    LOG(ERROR) << "--promotion_delay_ms (" << FLAGS_promotion_delay_ms
               << ") must be greater than --master_lease_ms (" << FLAGS_master_lease_ms
               << "): a slave could otherwise be promoted while the old master may still write";
    return 2;
  }
  fulcrum::registry::DaemonOptions options;
  options.host = FLAGS_host;
  options.port = FLAGS_port;
  options.data_dir = FLAGS_data_dir;
  options.heartbeat_interval = std::chrono::milliseconds(FLAGS_heartbeat_interval_ms);
  options.heartbeat_timeout = std::chrono::milliseconds(FLAGS_heartbeat_timeout_ms);
  options.down_ttl = std::chrono::milliseconds(FLAGS_down_ttl_ms);
  options.max_watch_wait = std::chrono::milliseconds(FLAGS_max_watch_wait_ms);
  options.ms_heartbeat_interval = std::chrono::milliseconds(FLAGS_ms_heartbeat_interval_ms);
  options.master_lease = std::chrono::milliseconds(FLAGS_master_lease_ms);
  options.promotion_delay = std::chrono::milliseconds(FLAGS_promotion_delay_ms);
  options.switchover_timeout = std::chrono::milliseconds(FLAGS_switchover_timeout_ms);
  options.idle_timeout_ms = FLAGS_idle_timeout_ms;
  options.max_frame_bytes = static_cast<uint32_t>(FLAGS_max_frame_bytes);
  options.max_connections = FLAGS_max_connections;
  options.token_file = FLAGS_token_file;
  options.heartbeat_port = FLAGS_heartbeat_port;
  options.heartbeat_io_threads = FLAGS_heartbeat_io_threads;
  options.heartbeat_realtime = FLAGS_heartbeat_realtime;
  options.tls_cert_file = FLAGS_tls_cert_file;
  options.tls_key_file = FLAGS_tls_key_file;

  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);

  fulcrum::registry::RegistryDaemon daemon(options);
  fulcrum::Status s = daemon.Start();
  if (!s.ok()) {
    LOG(ERROR) << "fulcrum-registry cannot start: " << s;
    return 1;
  }
  LOG(INFO) << "fulcrum-registry serving on " << FLAGS_host << ":" << daemon.port()
            << (FLAGS_tls_cert_file.empty() ? "" : " (TLS)") << ", heartbeat port "
            << (daemon.heartbeat_port() > 0 ? std::to_string(daemon.heartbeat_port()) : "off");
  std::printf("LISTENING %d\n", daemon.port());
  std::fflush(stdout);
  if (FLAGS_admin_port >= 0) {
    fulcrum::Admin& admin = fulcrum::Admin::Global();
    admin.SetPage("/status", fulcrum::registry::RegistryStatusPage(daemon.store()));
    fulcrum::AdminOptions admin_options;
    admin_options.host = FLAGS_admin_host;
    admin_options.port = FLAGS_admin_port;
    if (fulcrum::Status a = admin.Start(admin_options); !a.ok()) {
      LOG(ERROR) << "fulcrum-registry cannot serve its admin pages: " << a;
      daemon.Stop();
      return 1;
    }
    std::printf("ADMIN %d\n", admin.port());
    std::fflush(stdout);
  }
  while (!stop_requested) ::pause();
  LOG(INFO) << "stopping";
  fulcrum::Admin::Global().Stop();  // its /status reads the store
  daemon.Stop();
  return 0;
}
