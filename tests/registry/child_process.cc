#include "child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace fulcrum::registry_test {

using Clock = std::chrono::steady_clock;

ChildProcess ChildProcess::Spawn(const std::vector<std::string>& argv,
                                 const std::string& stderr_path) {
  auto process = testing::Subprocess::Spawn(argv, {.stderr_path = stderr_path});
  if (!process.ok()) throw std::runtime_error(process.status().ToString());
  return ChildProcess(std::move(process).value());
}

std::string ChildProcess::WaitForLine(const std::string& prefix,
                                      std::chrono::milliseconds timeout) {
  StatusOr<std::string> rest = process_->WaitForLine(prefix, timeout);
  return rest.ok() ? prefix + *rest : "";
}

void ChildProcess::Signal(int sig) {
  if (!process_->reaped()) (void)process_->Signal(sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (process_->reaped()) return std::nullopt;
  StatusOr<int> status = process_->Wait(timeout);
  if (!status.ok()) return std::nullopt;
  return *status;
}

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  const std::string out_path = dir.path() + "/out";
  const std::string err_path = dir.path() + "/err";
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  CommandResult result;
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (Clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      result.err = "timed out";
      return result;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/fulcrum-registry-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

}  // namespace fulcrum::registry_test
