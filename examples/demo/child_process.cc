#include "child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace fulcrum_demo {

namespace {

using fulcrum::Status;
using fulcrum::StatusCode;
using SteadyClock = std::chrono::steady_clock;

Status ErrnoError(const std::string& what, int err) {
  return Status::Error(StatusCode::kInternal, what + ": " + std::strerror(err));
}

}  // namespace

fulcrum::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const std::vector<std::string>& argv) {
  if (argv.empty()) return Status::Error(StatusCode::kInvalidArgument, "Spawn: empty argv");
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return ErrnoError("pipe2", errno);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_adddup2(&files, out[1], STDOUT_FILENO);  // clears close-on-exec
  // Only stdin, stdout and stderr: a child holding a copy of one of the demo's connections
  // would keep it open after the demo closes it.
  posix_spawn_file_actions_addclosefrom_np(&files, 3);
  // The child starts with no blocked signals and SIGPIPE at its default, whatever the demo
  // blocks or ignores.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = 0;
  const int err = ::posix_spawn(&pid, args[0], &files, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&files);
  ::close(out[1]);
  if (err != 0) {
    ::close(out[0]);
    return ErrnoError("cannot start " + argv[0], err);
  }
  return std::unique_ptr<ChildProcess>(new ChildProcess(pid, out[0]));
}

ChildProcess::~ChildProcess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ::close(stdout_fd_);
}

fulcrum::StatusOr<std::string> ChildProcess::WaitForLine(std::string_view prefix,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    size_t newline;
    while ((newline = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      if (line.starts_with(prefix)) return line.substr(prefix.size());
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      return Status::Error(
          StatusCode::kDeadlineExceeded,
          "no line starting with '" + std::string(prefix) + "' from pid " + std::to_string(pid_));
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) return ErrnoError("poll", errno);
    if (rc <= 0) continue;
    char buf[4096];
    const ssize_t got = ::read(stdout_fd_, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return Status::Error(
          StatusCode::kUnavailable,
          "pid " + std::to_string(pid_) + " exited before printing '" + std::string(prefix) + "'");
    }
    buffered_.append(buf, static_cast<size_t>(got));
  }
}

Status ChildProcess::Signal(int sig) {
  if (reaped_) {
    return Status::Error(StatusCode::kInternal, "pid " + std::to_string(pid_) + " was reaped");
  }
  if (::kill(pid_, sig) != 0) return ErrnoError("kill", errno);
  return Status::Ok();
}

Status ChildProcess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (!reaped_) {
    int status;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
    } else if (r < 0 && errno != EINTR) {
      return ErrnoError("waitpid", errno);
    } else if (SteadyClock::now() >= deadline) {
      return Status::Error(StatusCode::kDeadlineExceeded,
                           "pid " + std::to_string(pid_) + " still running");
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  return Status::Ok();
}

}  // namespace fulcrum_demo
