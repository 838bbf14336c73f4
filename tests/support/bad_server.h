// BadServer: a raw TCP server on 127.0.0.1 (port chosen by the OS) that misbehaves in one
// chosen way, for tests that check a client counts such endpoints as failures.
//
//   fulcrum::testing::BadServer bad(fulcrum::testing::BadServer::Mode::kHang);
//   ASSERT_TRUE(bad.Start().ok());
//   fulcrum::Endpoint e{"127.0.0.1", bad.port()};
//   ... a call to e times out ...
//   EXPECT_GE(bad.accepted(), 1);
//
// It serves on its own thread until Stop() or destruction. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "fulcrum/status.h"

namespace fulcrum::testing {

class BadServer {
 public:
  enum class Mode {
    kGarbageFrame,   // answers each request frame with a well-formed frame of junk (0xFF...)
    kGarbageBytes,   // answers each request frame with junk that is not even a frame
    kHalfFrame,      // answers with half of a frame, then closes the connection
    kHang,           // reads requests, never answers, keeps the connection open
    kCloseOnAccept,  // closes each connection as soon as it is accepted
    kTrickle,        // answers with the header of a 4 KiB frame, then one byte every 20 ms:
                     // no single read ever waits long, but the reply takes 80 s
  };

  explicit BadServer(Mode mode) : mode_(mode) {}
  ~BadServer();
  BadServer(const BadServer&) = delete;
  BadServer& operator=(const BadServer&) = delete;

  Status Start();
  // Closes the listener and every connection; joins the thread. Idempotent.
  void Stop();

  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }  // connections accepted so far
  int requests() const { return requests_.load(); }  // complete request frames read

 private:
  void Run();

  const Mode mode_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe that wakes the thread for Stop()
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<int> accepted_{0};
  std::atomic<int> requests_{0};
};

}  // namespace fulcrum::testing
