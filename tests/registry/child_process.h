// ChildProcess: the registry's and kvstore's multi-process tests' handle on a child, a thin
// layer over fulcrum::testing::Subprocess (tests/support/subprocess.h: started and reaped by
// PID, killed with the test) that sends the child's stderr to a file the test reads, and keeps
// the small interface those tests were written against.
//
//   ChildProcess p = ChildProcess::Spawn({bin, "--port=0"}, dir + "/stderr");
//   std::string line = p.WaitForLine("LISTENING", std::chrono::seconds(10));
//   p.Signal(SIGKILL);
//   p.Wait(std::chrono::seconds(10));
//
// Not thread-safe. The destructor SIGKILLs and reaps a child still running, by its PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace fulcrum::registry_test {

class ChildProcess {
 public:
  // Throws std::runtime_error when the child cannot be started (fork or exec failed).
  static ChildProcess Spawn(const std::vector<std::string>& argv, const std::string& stderr_path);

  // The first stdout line starting with `prefix` (the whole line), or "" after `timeout` or at
  // EOF.
  std::string WaitForLine(const std::string& prefix, std::chrono::milliseconds timeout);
  void Signal(int sig);
  // The exit status (as from waitpid), or nullopt if still running after `timeout` (or already
  // reaped by an earlier Wait).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  // -1 once reaped.
  pid_t pid() const { return process_->reaped() ? -1 : process_->pid(); }

 private:
  explicit ChildProcess(std::unique_ptr<testing::Subprocess> process)
      : process_(std::move(process)) {}
  std::unique_ptr<testing::Subprocess> process_;
};

// Runs a command to completion (bounded by `timeout`, then SIGKILL): exit code and output.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A fresh temporary directory under $TMPDIR, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& bytes);

}  // namespace fulcrum::registry_test
