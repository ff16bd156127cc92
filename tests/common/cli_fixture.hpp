// tests/common/cli_fixture.hpp — drives the real `taskpool` binary (TASKPOOL_CLI_PATH, set by
// tests/CMakeLists.txt) for end-to-end tests: one-shot commands, and `serve` daemons started as
// child processes whose log goes to serve.log in the test's directory.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.hpp"
#include "taskpool/sqlite_store.hpp"

namespace taskpool::test {

struct CliResult {
  int rc;
  std::string out, err;
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = tmp_.file("tasks.db");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  CliResult cli(const std::vector<std::string>& args, const std::string& input = "") { return cli_as("", args, input); }
  // cli() with the command line prefixed by `prefix` (e.g. "setpriv ... " to run as another user).
  CliResult cli_as(const std::string& prefix, const std::vector<std::string>& args, const std::string& input = "") {
    std::string cmd = prefix + quote(TASKPOOL_CLI_PATH);
    for (auto& a : args) cmd += " " + quote(a);
    auto in = dir_ / "stdin.txt", err = dir_ / "stderr.txt";
    std::ofstream(in) << input;
    if (std::find(args.begin(), args.end(), "--db") == args.end()) cmd += " --db " + quote(db_);
    cmd += " < " + quote(in.string()) + " 2> " + quote(err.string());
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int status = pclose(p);
    std::ifstream e(err);
    std::stringstream es;
    es << e.rdbuf();
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out, es.str()};
  }

  // `serve --db DB` with the test defaults (fast poll, two threads) before `extra`.
  pid_t serve(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--poll", "50ms", "--threads", "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return daemon(args);
  }
  // `serve --db DB args...`, with `env` added to its environment; its output goes to serve.log.
  pid_t daemon(const std::vector<std::string>& args, const std::map<std::string, std::string>& env = {}) {
    pid_t pid = daemon_of("serve", args, env);
    ++serves_;
    return pid;
  }
  // daemon() for another long-running command (`web`).
  pid_t daemon_of(const std::string& command, const std::vector<std::string>& args,
                  const std::map<std::string, std::string>& env = {}) {
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open((dir_ / "serve.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      for (auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
      std::vector<std::string> all{TASKPOOL_CLI_PATH, command, "--db", db_};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return pid;
  }
  // Waits until the latest daemon reported it is serving (its signal handling is in place).
  // pid: wait for that daemon's own line (its owner name holds ":PID:"), whether or not daemons
  // killed earlier got as far as theirs.
  bool serving(pid_t pid = 0) {
    const std::string mark = ":" + std::to_string(pid) + ":";
    return taskpool::test::eventually([&] {
      std::ifstream log(dir_ / "serve.log");
      std::string line;
      int n = 0;
      while (std::getline(log, line)) {
        if (line.find("serving") == std::string::npos) continue;
        if (pid != 0 && line.find(mark) != std::string::npos) return true;
        ++n;
      }
      return pid == 0 && n >= serves_;
    });
  }
  int serves_ = 0;
  // What the daemons wrote to serve.log so far.
  std::string log_text() {
    std::ifstream f(dir_ / "serve.log");
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  static int wait_exit(pid_t pid) {
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // wait_exit() with a bound: after `limit` the process is SIGKILLed and -1 returned.
  static int wait_exit_within(pid_t pid, std::chrono::seconds limit) {
    int status = 0;
    bool ended = taskpool::test::eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }, limit);
    if (!ended) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  std::unique_ptr<taskpool::TaskStore> store() { return taskpool::open_sqlite_store(db_); }

  taskpool::test::TempDir tmp_;
  const std::filesystem::path& dir_ = tmp_.path();
  std::string db_;
};

}  // namespace taskpool::test
