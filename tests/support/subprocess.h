// Subprocess: a child process a test starts, talks to through its stdout, signals and reaps,
// always by PID.
//
//   auto child = fulcrum::testing::Subprocess::Spawn({FULCRUM_ECHO_SERVER, "--id=a"});
//   ASSERT_TRUE(child.ok()) << child.status();
//   StatusOr<std::string> port = child.value()->WaitForLine("LISTENING ",
//   std::chrono::seconds(10)); child.value()->Signal(SIGTERM); StatusOr<int> status =
//   child.value()->Wait(std::chrono::seconds(10));  // a waitpid() status
//   EXPECT_TRUE(WIFEXITED(status.value()) && WEXITSTATUS(status.value()) == 0);
//
// The child gets SIGKILL if the thread that spawned it exits (PR_SET_PDEATHSIG), and the
// destructor SIGKILLs and reaps it if it is still running, so no test leaves a process behind.
// Its stderr is the test's (or a file, SpawnOptions::stderr_path); stdout is a pipe read by
// WaitForLine. It inherits no other descriptor of the test's (listening sockets included).
//
// Thread-compatible: one thread drives a Subprocess.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fulcrum/clock.h"
#include "fulcrum/status.h"

namespace fulcrum::testing {

struct SpawnOptions {
  // Non-empty: the child's stderr is appended to this file instead of going to the test's.
  std::string stderr_path;
};

class Subprocess {
 public:
  // argv[0] is the path of the program (no PATH search).
  static StatusOr<std::unique_ptr<Subprocess>> Spawn(const std::vector<std::string>& argv,
                                                     const SpawnOptions& options = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Reads stdout until a line starting with `prefix` and returns the rest of that line
  // (earlier lines are skipped). kDeadlineExceeded after `timeout`, kUnavailable at EOF.
  StatusOr<std::string> WaitForLine(std::string_view prefix, Duration timeout);
  // Reads stdout until the child closes it and returns everything not yet returned.
  // kDeadlineExceeded after `timeout`.
  StatusOr<std::string> ReadToEnd(Duration timeout);
  // kill(pid, sig); an error once the child has been reaped.
  Status Signal(int sig);
  // Reaps the child and returns its waitpid() status; kDeadlineExceeded if it is still
  // running after `timeout` (it is left running).
  StatusOr<int> Wait(Duration timeout);

  pid_t pid() const { return pid_; }
  bool reaped() const { return reaped_; }

 private:
  Subprocess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}

  pid_t pid_;
  int stdout_fd_;
  bool reaped_ = false;
  int status_ = 0;
  std::string buffered_;  // stdout read but not yet returned
};

// "exited with 0", "killed by signal 9 (Killed)", ... for test failure messages.
std::string DescribeWaitStatus(int status);

}  // namespace fulcrum::testing
