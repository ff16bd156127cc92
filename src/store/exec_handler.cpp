// src/store/exec_handler.cpp — the built-in "exec" handler: run a program, no shell.
//
// posix_spawnp (not fork + exec by hand): the child gets the pipe as stdout/stderr, its own
// process group (so a timeout kills everything it started) and its working directory, without
// running non-async-signal-safe code between fork and exec in a multithreaded process.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "taskpool/exec_handler.hpp"
#include "taskpool/time_text.hpp"

extern char** environ;

namespace taskpool {
namespace {

constexpr std::size_t kOutputCap = 64 * 1024;

struct Spec {
  std::vector<std::string> argv;
  std::optional<std::chrono::milliseconds> timeout;
  std::string cwd;
  std::vector<std::string> env;  // NAME=value, the inherited environment with overrides
};

Spec parse_spec(const std::string& payload) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(payload);
  } catch (const std::exception&) {
    throw std::invalid_argument("exec: payload is not valid JSON");
  }
  Spec s;
  if (!j.is_object() || !j.contains("argv") || !j["argv"].is_array() || j["argv"].empty())
    throw std::invalid_argument("exec: payload needs a non-empty \"argv\" array of strings");
  for (auto& a : j["argv"]) {
    if (!a.is_string()) throw std::invalid_argument("exec: every argv element must be a string");
    s.argv.push_back(a.get<std::string>());
  }
  for (auto& [k, v] : j.items()) {
    if (k == "argv") continue;
    if (k == "timeout") {
      if (!v.is_string()) throw std::invalid_argument("exec: \"timeout\" must be a duration string like \"30s\"");
      s.timeout = parse_duration(v.get<std::string>());
    } else if (k == "cwd") {
      if (!v.is_string()) throw std::invalid_argument("exec: \"cwd\" must be a string");
      s.cwd = v.get<std::string>();
    } else if (k == "env") {
      if (!v.is_object()) throw std::invalid_argument("exec: \"env\" must be an object of strings");
      for (auto& [name, value] : v.items()) {
        if (!value.is_string()) throw std::invalid_argument("exec: env value of " + name + " must be a string");
        s.env.push_back(name + "=" + value.get<std::string>());
      }
    } else {
      throw std::invalid_argument("exec: unknown payload field \"" + k + "\"");
    }
  }
  return s;
}

std::string run_spec(const Spec& s, std::stop_token stop) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(std::string("exec: pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  if (!s.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, s.cwd.c_str());
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> argv, envp;
  for (auto& a : s.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (auto& e : s.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    throw std::runtime_error("exec: cannot run " + s.argv[0] + ": " + std::strerror(rc));
  }
  std::string out;
  const auto deadline = s.timeout ? std::chrono::steady_clock::now() + *s.timeout : std::chrono::steady_clock::time_point::max();
  bool killed = false, timed_out = false, eof = false;
  std::chrono::steady_clock::time_point kill_at{};
  char buf[4096];
  int status = 0;
  for (;;) {
    if (!eof) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n > 0) {
          out.append(buf, static_cast<std::size_t>(n));
          if (out.size() > kOutputCap) out.erase(0, out.size() - kOutputCap);
        } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
          eof = true;
        }
      }
    } else {
      usleep(20'000);
    }
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid && eof) break;
    if (w == pid) {
      // Drain what is left, then stop.
      ssize_t n;
      while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
      break;
    }
    auto now = std::chrono::steady_clock::now();
    if (!killed && (now >= deadline || stop.stop_requested())) {
      timed_out = now >= deadline;
      kill(-pid, SIGTERM);
      killed = true;
      kill_at = now + std::chrono::seconds(2);
    } else if (killed && now >= kill_at) {
      kill(-pid, SIGKILL);
    }
  }
  close(fds[0]);
  if (out.size() > kOutputCap) out.erase(0, out.size() - kOutputCap);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  nlohmann::json result = {{"exit_code", code}, {"output", out}};
  std::string text = result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (killed) throw std::runtime_error(std::string(timed_out ? "exec: timed out" : "exec: stopped") + "; " + text);
  if (code != 0) throw std::runtime_error("exec: exit code " + std::to_string(code) + "; " + text);
  return text;
}

// The child's environment: ours, then the payload's "env", then the task's identity.
void complete_env(Spec& s, const TaskRecord& t) {
  std::vector<std::string> extra = std::move(s.env);
  extra.push_back("TASKPOOL_TASK_ID=" + std::to_string(t.id));
  extra.push_back("TASKPOOL_EXEC_TIME=" +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.exec_time.time_since_epoch()).count()));
  extra.push_back("TASKPOOL_ATTEMPT=" + std::to_string(t.attempts));
  auto overridden = [&](const std::string& kv) {
    auto name = kv.substr(0, kv.find('=') + 1);
    for (auto& e : extra)
      if (e.compare(0, name.size(), name) == 0) return true;
    return false;
  };
  s.env.clear();
  for (char** e = environ; *e != nullptr; ++e)
    if (!overridden(*e)) s.env.emplace_back(*e);
  for (auto& e : extra) s.env.push_back(std::move(e));
}

}  // namespace

void validate_exec_payload(std::string_view payload) { parse_spec(std::string(payload)); }

Handler exec_handler() {
  return [](const TaskContext& c) {
    Spec s = parse_spec(c.task.payload);
    complete_env(s, c.task);
    return run_spec(s, c.stop);
  };
}

}  // namespace taskpool
