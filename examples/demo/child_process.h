// ChildProcess: a program the demo starts with posix_spawn, reads through its stdout, signals
// and reaps, always by PID.
//
//   auto server = ChildProcess::Spawn({"/path/calculator_server", "--port=0"});
//   if (!server.ok()) ...;
//   StatusOr<std::string> port = (*server)->WaitForLine("LISTENING ", std::chrono::seconds(20));
//   (*server)->Signal(SIGTERM);
//   (*server)->Wait(std::chrono::seconds(30));
//
// The destructor SIGKILLs and reaps a child still running, so an early return leaves no
// process behind. The child's stderr is the demo's; its stdout is a pipe read by WaitForLine;
// it inherits no other descriptor (the demo's sockets stay the demo's).
//
// Thread-compatible: one thread at a time drives a ChildProcess.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/status.h"

namespace fulcrum_demo {

class ChildProcess {
 public:
  // argv[0] is the program's path (no PATH search).
  static fulcrum::StatusOr<std::unique_ptr<ChildProcess>> Spawn(
      const std::vector<std::string>& argv);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Reads stdout up to a line starting with `prefix` and returns the rest of that line; earlier
  // lines are skipped. An error after `timeout`, or when the child closes its stdout first.
  fulcrum::StatusOr<std::string> WaitForLine(std::string_view prefix,
                                             std::chrono::milliseconds timeout);
  // kill(pid, sig); an error once the child has been reaped.
  fulcrum::Status Signal(int sig);
  // Reaps the child; an error if it still runs after `timeout` (it is left running).
  fulcrum::Status Wait(std::chrono::milliseconds timeout);

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

 private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  const pid_t pid_;
  const int stdout_fd_;
  bool reaped_ = false;
  std::string buffered_;  // stdout read but not yet returned
};

}  // namespace fulcrum_demo
