// ChildProcess: a minimal child-process runner for the registry's multi-process tests (a
// private stand-in until tests/support/subprocess.h lands). Stdout is read through a pipe
// (to find "LISTENING <port>"); stderr goes to a file the test can read (log lines).
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
#include <optional>
#include <string>
#include <vector>

namespace fulcrum::registry_test {

class ChildProcess {
 public:
  static ChildProcess Spawn(const std::vector<std::string>& argv, const std::string& stderr_path);
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  // The first stdout line containing `needle`, or "" after `timeout` or at EOF.
  std::string WaitForLine(const std::string& needle, std::chrono::milliseconds timeout);
  void Signal(int sig);
  // The exit status (as from waitpid), or nullopt if still running after `timeout`.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  pid_t pid() const { return pid_; }

 private:
  ChildProcess() = default;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
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
