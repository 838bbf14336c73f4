#include "support/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

namespace fulcrum::testing {

namespace {

std::string ErrnoText(const std::string& what, int err) { return what + ": " + std::strerror(err); }

using SteadyClock = std::chrono::steady_clock;

}  // namespace

StatusOr<std::unique_ptr<Subprocess>> Subprocess::Spawn(const std::vector<std::string>& argv,
                                                        const SpawnOptions& options) {
  if (argv.empty()) return Status::Error(StatusCode::kInvalidArgument, "Spawn: empty argv");
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe
  // calls are allowed in a threaded parent.
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const char* stderr_path = options.stderr_path.empty() ? nullptr : options.stderr_path.c_str();

  int out[2];
  int err[2];  // the child reports a failed exec through this close-on-exec pipe
  if (::pipe2(out, O_CLOEXEC) != 0) {
    return Status::Error(StatusCode::kInternal, ErrnoText("pipe2", errno));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    ::close(out[0]);
    ::close(out[1]);
    return Status::Error(StatusCode::kInternal, ErrnoText("pipe2", e));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return Status::Error(StatusCode::kInternal, ErrnoText("fork", e));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a sigwait()ing parent blocks signals
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(out[1], STDOUT_FILENO);  // dup2 clears close-on-exec on the new descriptor
    if (stderr_path != nullptr) {
      const int log = ::open(stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (log >= 0) ::dup2(log, STDERR_FILENO);
    }
    // Keep only stdin/stdout/stderr and the error pipe: a child holding a copy of the test's
    // listening sockets would keep them open after the test closes them.
    const int report = err[1];
    if (report > 3) ::close_range(3, static_cast<unsigned>(report) - 1, 0);
    ::close_range(static_cast<unsigned>(report) + 1, ~0u, 0);
    ::execv(args[0], args.data());
    const int e = errno;
    [[maybe_unused]] ssize_t n = ::write(report, &e, sizeof(e));
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = ::read(err[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  ::close(err[0]);
  std::unique_ptr<Subprocess> child(new Subprocess(pid, out[0]));
  if (n > 0) {
    child->Wait(std::chrono::seconds(10));
    return Status::Error(StatusCode::kInvalidArgument, ErrnoText("exec " + argv[0], exec_errno));
  }
  return child;
}

Subprocess::~Subprocess() {
  if (!reaped_) {
    ::kill(pid_, SIGKILL);  // by PID, never by name
    while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
    }
  }
  ::close(stdout_fd_);
}

StatusOr<std::string> Subprocess::WaitForLine(std::string_view prefix, Duration timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    size_t newline;
    while ((newline = buffered_.find('\n')) != std::string::npos) {
      std::string line = buffered_.substr(0, newline);
      buffered_.erase(0, newline + 1);
      if (line.compare(0, prefix.size(), prefix) == 0) return line.substr(prefix.size());
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
    if (rc < 0 && errno != EINTR) return Status::Error(StatusCode::kInternal, "poll failed");
    if (rc <= 0) continue;
    char buf[4096];
    const ssize_t got = ::read(stdout_fd_, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      return Status::Error(StatusCode::kUnavailable, "pid " + std::to_string(pid_) +
                                                         " closed stdout before a line "
                                                         "starting with '" +
                                                         std::string(prefix) + "'");
    }
    buffered_.append(buf, static_cast<size_t>(got));
  }
}

StatusOr<std::string> Subprocess::ReadToEnd(Duration timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      return Status::Error(StatusCode::kDeadlineExceeded,
                           "pid " + std::to_string(pid_) + " kept stdout open");
    }
    pollfd pfd{stdout_fd_, POLLIN, 0};
    const int rc = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno != EINTR) return Status::Error(StatusCode::kInternal, "poll failed");
    if (rc <= 0) continue;
    char buf[16384];
    const ssize_t got = ::read(stdout_fd_, buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::exchange(buffered_, std::string());
    buffered_.append(buf, static_cast<size_t>(got));
  }
}

Status Subprocess::Signal(int sig) {
  if (reaped_) {
    return Status::Error(StatusCode::kInternal,
                         "pid " + std::to_string(pid_) + " has already been reaped");
  }
  if (::kill(pid_, sig) != 0) return Status::Error(StatusCode::kInternal, ErrnoText("kill", errno));
  return Status::Ok();
}

StatusOr<int> Subprocess::Wait(Duration timeout) {
  if (reaped_) return status_;
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      return status_;
    }
    if (r < 0 && errno != EINTR) {
      return Status::Error(StatusCode::kInternal, ErrnoText("waitpid", errno));
    }
    if (SteadyClock::now() >= deadline) {
      return Status::Error(StatusCode::kDeadlineExceeded,
                           "pid " + std::to_string(pid_) + " still running");
    }
    // Polls the process state; no test time is being waited out here.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
           strsignal(WTERMSIG(status)) + ")";
  }
  if (WIFSTOPPED(status)) return "stopped by signal " + std::to_string(WSTOPSIG(status));
  return "wait status " + std::to_string(status);
}

}  // namespace fulcrum::testing
