// tests/common/process_util.hpp — checks on processes that tests do not own (a program's
// background grandchild, a daemon's programs): read the pid a process wrote, and whether it is
// gone. A zombie counts as gone: it runs no code, and whoever adopted it (init, or a container's
// first process that never reaps) decides when it disappears.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/test_util.hpp"

namespace taskpool::test {

// Runs body(i) in n forked children (each must open its own connections) and returns their exit
// statuses as waitpid reports them; a child exits with what body returns, 1 when it throws.
inline std::vector<int> run_children(int n, const std::function<int(int)>& body) {
  std::vector<pid_t> kids;
  for (int i = 0; i < n; ++i) {
    pid_t pid = fork();
    if (pid == 0) {
      int rc = 1;
      try {
        rc = body(i);
      } catch (...) {
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  std::vector<int> statuses;
  for (pid_t k : kids) {
    int status = -1;
    if (k > 0) waitpid(k, &status, 0);
    statuses.push_back(status);
  }
  return statuses;
}

// The pid in `file` (written as "echo $! > tmp && mv tmp file"), or 0 when not there yet.
inline pid_t read_pid(const std::filesystem::path& file) {
  std::ifstream in(file);
  long pid = 0;
  if (!(in >> pid)) return 0;
  return static_cast<pid_t>(pid);
}

inline bool process_gone(pid_t pid) {
  if (kill(pid, 0) == -1 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;
  auto close = line.rfind(')');  // "pid (comm) S ...": comm may contain spaces and parentheses
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

// Polls `pred` every 10 ms until it holds; false after `limit` (a hang guard, not a timing
// assertion). For waits on other processes, where eventually()'s spinning would only burn a core.
template <class Pred>
bool wait_until(Pred pred, std::chrono::seconds limit = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

// Waits (a hang guard, not a timing assertion) until every pid is gone; reaps those that are
// our children (they are, when the test made itself a child subreaper).
inline bool all_gone(const std::vector<pid_t>& pids, std::chrono::seconds limit = std::chrono::seconds(20)) {
  return wait_until(
      [&] {
        for (pid_t p : pids) {
          waitpid(p, nullptr, WNOHANG);
          if (!process_gone(p)) return false;
        }
        return true;
      },
      limit);
}

// A best-effort clean-up after a failed check: no test leaves sleepers behind.
inline void kill_all(const std::vector<pid_t>& pids) {
  for (pid_t p : pids)
    if (p > 1) kill(p, SIGKILL);
}

}  // namespace taskpool::test
