// src/store/exec_handler.cpp — the built-in "exec" handler: run a program, no shell.
//
// Design. Each run forks a supervisor S from the worker thread; S forks the program P:
//
//   worker thread ──fork──> S  (process-group leader, child subreaper, parent-death signal)
//                            └──fork, execve──> P  (and whatever P starts: the same group)
//
// Why not posix_spawn: a program must die with the daemon, even a SIGKILLed one, and so must
// what it started in the background; only a process that lives exactly as long as the run can
// see to that. S gets kParentDeathSignal when the thread that forked it dies and then SIGKILLs
// the whole group. PR_SET_PDEATHSIG follows that thread, not the process: it is fine here
// because the worker thread blocks in this handler for the run's whole life, so "the forking
// thread died" means "the daemon died" (S also checks getppid() to tell that from a stray
// signal, and right after prctl() to close the race with a daemon that died before it).
// S leads the group, so its pid names the group until the worker reaps S: kill(-pid) never
// reaches a recycled group.
//
// Who does what, and what dies when.
//  - S reaps P and every orphan it adopts. When P exits, S sends P's wait status up the control
//    pipe, SIGTERMs the rest of the group (the run is over: nothing outlives it), waits until it
//    has no child left, at most kKillGrace, and exits with P's status (its code or its signal).
//  - The worker reads the output into a 64 KiB ring, so memory stays flat whatever the program
//    writes and for however long. The timeout and the stop token bound the whole run: SIGTERM
//    to the group, SIGKILL kKillGrace later (at once if P had already exited: what P left behind
//    got its SIGTERM from S). When S has exited (a pidfd wakes the worker; waitid(WNOWAIT) says
//    so without reaping), the worker SIGKILLs the group once more — stragglers that outlasted
//    S's grace — then reaps S and drains what is left in the pipe, a bounded amount.
//  - P reports why it could not start (chdir or execve failed) on the control pipe, which is
//    close-on-exec in P, and exits 127: the error names the directory or the program.
//  - The daemon dies: S SIGKILLs the group, itself included.
//  Processes that leave the group (setsid, setpgid) escape these kills; documented.
//
// Signals. The worker blocks every signal around fork(), so no handler of the daemon ever runs
// in S. S resets every disposition to the default and keeps all signals blocked, waiting for
// SIGCHLD and kParentDeathSignal with sigtimedwait (the group's SIGTERM stays pending in S,
// unused). P unblocks everything before execve: the program starts with an empty signal mask
// and default dispositions whatever the daemon blocks (serve blocks INT, TERM, USR1, USR2,
// TTIN, TTOU) or ignores (SIGPIPE).
//
// Async-signal safety: S is a fork of a multithreaded process that never calls execve, and P
// runs until execve: both only make system calls on memory prepared before the first fork
// (argv, envp, the PATH candidates, the directory) — no allocation, no locks, no stdio.
// (sigtimedwait and close_range are bare system calls in glibc.) S forks P with _Fork(), which
// runs no pthread_atfork handlers: their locks may have been held by other daemon threads when
// S was forked.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "taskpool/exec_handler.hpp"
#include "taskpool/time_text.hpp"

extern char** environ;

namespace taskpool {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

constexpr std::size_t kOutputCap = 64 * 1024;
constexpr auto kKillGrace = 2s;              // SIGTERM, then SIGKILL this much later
constexpr int kParentDeathSignal = SIGHUP;   // what S gets when the forking thread dies
constexpr int kCtlFd = 3;                    // the control pipe's number in S and P
constexpr std::size_t kDrainBudget = 1 << 20;  // bytes read per wake-up, so a flood cannot starve the checks
// Set by the handler for every run; a payload may not set them (one entry per name, and a
// program can trust them).
constexpr std::array<std::string_view, 3> kReservedEnv{"TASKPOOL_TASK_ID", "TASKPOOL_EXEC_TIME", "TASKPOOL_ATTEMPT"};

// ---------------------------------------------------------------------------------------------
// The payload

struct Spec {
  std::vector<std::string> argv;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<std::string> cwd;
  std::vector<std::pair<std::string, std::string>> env;
};

// A name in a message, JSON-quoted: a newline or an invalid byte in it cannot break the line.
std::string json_quoted(std::string_view s) {
  return nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

[[noreturn]] void refuse(const std::string& what) { throw std::invalid_argument("exec: " + what); }

void refuse_nul(const std::string& s, const std::string& field) {
  if (s.find('\0') != std::string::npos) refuse(field + " contains a NUL byte");
}

Spec parse_spec(std::string_view payload) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(payload);
  } catch (const nlohmann::json::parse_error& e) {
    refuse("payload is not valid JSON (at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception&) {
    refuse("payload is not valid JSON");
  }
  if (!j.is_object()) refuse("payload must be a JSON object like {\"argv\": [\"prog\", \"arg\"]}");
  Spec s;
  auto argv = j.find("argv");
  if (argv == j.end()) refuse("\"argv\" is missing: a non-empty array of strings, the program first");
  if (!argv->is_array() || argv->empty()) refuse("\"argv\" must be a non-empty array of strings, the program first");
  for (std::size_t i = 0; i < argv->size(); ++i) {
    const auto& a = (*argv)[i];
    const std::string field = "\"argv[" + std::to_string(i) + "]\"";
    if (!a.is_string()) refuse(field + " must be a string");
    const auto& v = a.get_ref<const std::string&>();
    refuse_nul(v, field);
    if (i == 0 && v.empty()) refuse(field + " (the program) must not be empty");
    s.argv.push_back(v);
  }
  for (auto& [key, v] : j.items()) {
    if (key == "argv") continue;
    if (key == "timeout") {
      if (!v.is_string()) refuse("\"timeout\" must be a duration string like \"30s\"");
      const auto& text = v.get_ref<const std::string&>();
      std::chrono::milliseconds d{};
      try {
        d = parse_duration(text);
      } catch (const std::invalid_argument&) {
        refuse("\"timeout\" " + json_quoted(text) + " is not a duration: use e.g. 250ms, 30s, 5m, 2h, 1d");
      }
      if (d.count() <= 0) refuse("\"timeout\" must be positive");
      if (d > kMaxDuration) refuse("\"timeout\" must be at most 18250d (50 years)");
      s.timeout = d;
    } else if (key == "cwd") {
      if (!v.is_string() || v.get_ref<const std::string&>().empty())
        refuse("\"cwd\" must be a non-empty string (a directory)");
      refuse_nul(v.get_ref<const std::string&>(), "\"cwd\"");
      s.cwd = v.get<std::string>();
    } else if (key == "env") {
      if (!v.is_object()) refuse("\"env\" must be an object of strings, like {\"NAME\": \"value\"}");
      for (auto& [name, value] : v.items()) {
        if (name.empty()) refuse("\"env\" has an empty name");
        const std::string field = "\"env\" name " + json_quoted(name);
        if (name.find('=') != std::string::npos) refuse(field + " contains '='");
        refuse_nul(name, field);
        if (std::find(kReservedEnv.begin(), kReservedEnv.end(), name) != kReservedEnv.end())
          refuse("\"env\" may not set " + name +
                 ": TASKPOOL_TASK_ID, TASKPOOL_EXEC_TIME and TASKPOOL_ATTEMPT are set by the handler");
        if (!value.is_string()) refuse("\"env\" value of " + json_quoted(name) + " must be a string");
        refuse_nul(value.get_ref<const std::string&>(), "\"env\" value of " + json_quoted(name));
        s.env.emplace_back(name, value.get<std::string>());
      }
    } else {
      refuse("unknown payload field " + json_quoted(key) + " (known: argv, timeout, cwd, env)");
    }
  }
  return s;
}

// Text from the payload in a run-time error: control characters shown escaped, one line.
std::string shown(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the forked processes need, prepared before fork: after it, S and P only read this.

struct Launch {
  std::vector<std::string> env, paths;  // storage
  std::vector<char*> argv, envp;        // nullptr-terminated
  std::vector<const char*> candidates;  // execve these in turn (the PATH search); nullptr-terminated
  const char* cwd = nullptr;
  pid_t daemon = 0;
  int out_w = -1, ctl_w = -1;
  int max_fd = 0;  // the close loop's end where close_range is missing
};

// The daemon's environment minus the names set here, then the payload's "env", then the task's
// identity: exactly one entry per name.
std::vector<std::string> child_env(const Spec& s, const TaskRecord& t) {
  std::vector<std::string> own;
  for (auto& [name, value] : s.env) own.push_back(name + "=" + value);
  own.push_back("TASKPOOL_TASK_ID=" + std::to_string(t.id));
  own.push_back("TASKPOOL_EXEC_TIME=" +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(t.exec_time.time_since_epoch()).count()));
  own.push_back("TASKPOOL_ATTEMPT=" + std::to_string(t.attempts));
  std::unordered_set<std::string> seen;
  for (auto& kv : own) seen.insert(kv.substr(0, kv.find('=')));
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;         // not NAME=value
    if (!seen.insert(std::string(kv.substr(0, eq))).second) continue;  // ours, or a duplicate (getenv sees the first)
    env.emplace_back(kv);
  }
  for (auto& kv : own) env.push_back(std::move(kv));
  return env;
}

// The paths to try for argv[0]: itself if it has a '/', else each PATH entry of the child's
// environment (as execvp does, an empty entry is the working directory; no PATH: /bin:/usr/bin).
std::vector<std::string> program_paths(const std::string& prog, const std::vector<std::string>& env) {
  if (prog.find('/') != std::string::npos) return {prog};
  std::string path = "/bin:/usr/bin";
  for (auto& kv : env)
    if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
  std::vector<std::string> out;
  for (std::size_t i = 0;;) {
    auto j = path.find(':', i);
    std::string dir = path.substr(i, j == std::string::npos ? std::string::npos : j - i);
    out.push_back(dir.empty() ? prog : dir + "/" + prog);
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return out;
}

void prepare(Launch& l, const Spec& s, const TaskRecord& t) {
  l.env = child_env(s, t);
  l.paths = program_paths(s.argv[0], l.env);
  for (auto& a : s.argv) l.argv.push_back(const_cast<char*>(a.c_str()));
  l.argv.push_back(nullptr);
  for (auto& e : l.env) l.envp.push_back(e.data());
  l.envp.push_back(nullptr);
  for (auto& p : l.paths) l.candidates.push_back(p.c_str());
  l.candidates.push_back(nullptr);
  if (s.cwd) l.cwd = s.cwd->c_str();
  l.daemon = getpid();
  rlimit r{};
  l.max_fd = getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur != RLIM_INFINITY && r.rlim_cur < 65536
                 ? static_cast<int>(r.rlim_cur)
                 : 65536;
}

// ---------------------------------------------------------------------------------------------
// The forked side: async-signal-safe code only (see the file's note).

// One message on the control pipe (8 bytes: a pipe write of that size is atomic).
struct CtlMsg {
  std::int32_t kind, value;
};
enum : std::int32_t { kCwdFailed = 1, kExecFailed, kForkFailed, kExited };

void send_ctl(int fd, std::int32_t kind, std::int32_t value) noexcept {
  const CtlMsg m{kind, value};
  while (write(fd, &m, sizeof m) < 0 && errno == EINTR) {
  }
}

pid_t fork_without_atfork() noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  return _Fork();
#else
  return fork();
#endif
}

void close_from(int first, int max_fd) noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
  if (close_range(static_cast<unsigned>(first), ~0U, 0) == 0) return;
#endif
  for (int fd = first; fd < max_fd; ++fd) close(fd);
}

std::int64_t mono_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// P: enter the directory, unblock every signal, execve.
[[noreturn]] void exec_program(const Launch& l) noexcept {
  if (l.cwd != nullptr && chdir(l.cwd) != 0) {
    send_ctl(kCtlFd, kCwdFailed, errno);
    _exit(127);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // As execvp: EACCES from one candidate is reported if no other one runs; ENOENT-like errors
  // move on to the next; any other error stops the search.
  int err = ENOENT;
  bool denied = false;
  for (const char* const* c = l.candidates.data(); *c != nullptr; ++c) {
    execve(*c, l.argv.data(), l.envp.data());
    err = errno;
    if (err == EACCES) {
      denied = true;
    } else if (err != ENOENT && err != ENOTDIR && err != ESTALE && err != ENODEV && err != ETIMEDOUT) {
      break;
    }
  }
  if (denied && (err == ENOENT || err == ENOTDIR || err == EACCES)) err = EACCES;
  send_ctl(kCtlFd, kExecFailed, err);
  _exit(127);
}

// S exits as P did: with its code, or killed by its signal (no core of S's own).
[[noreturn]] void mirror(int status) noexcept {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    kill(getpid(), sig);  // pending while blocked; delivered (default action) by the unblock
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    _exit(128 + sig);
  }
  _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 127);
}

// S. Starts with every signal blocked (the worker blocked them around fork).
[[noreturn]] void supervise(const Launch& l) noexcept {
  setpgid(0, 0);
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  prctl(PR_SET_PDEATHSIG, kParentDeathSignal);
  if (getppid() != l.daemon) _exit(127);  // the daemon died before the prctl: nothing started yet
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, nullptr);  // (glibc's own two refuse: fine)

  // Descriptors: 0 /dev/null, 1 and 2 the output pipe, kCtlFd the control pipe (close-on-exec,
  // so P's execve closes it), nothing else — S never execs, so close-on-exec alone would keep
  // the daemon's descriptors (other runs' pipes among them) open here.
  const int out = fcntl(l.out_w, F_DUPFD_CLOEXEC, 10);
  const int ctl = fcntl(l.ctl_w, F_DUPFD_CLOEXEC, 10);
  const int nul_low = open("/dev/null", O_RDWR | O_CLOEXEC);
  const int nul = nul_low < 0 ? -1 : fcntl(nul_low, F_DUPFD_CLOEXEC, 10);
  if (out < 0 || ctl < 0 || nul < 0 || dup2(nul, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
      dup2(ctl, kCtlFd) < 0 || fcntl(kCtlFd, F_SETFD, FD_CLOEXEC) < 0) {
    const int err = errno;
    if (ctl >= 0) send_ctl(ctl, kForkFailed, err);
    _exit(127);
  }
  close_from(kCtlFd + 1, l.max_fd);

  const pid_t prog = fork_without_atfork();
  if (prog == 0) exec_program(l);
  if (prog < 0) {
    send_ctl(kCtlFd, kForkFailed, errno);
    _exit(127);
  }
  dup2(0, 1);  // S holds no end of the output pipe: its EOF is the group's business
  dup2(0, 2);

  sigset_t waited;
  sigemptyset(&waited);
  sigaddset(&waited, SIGCHLD);
  sigaddset(&waited, kParentDeathSignal);
  bool prog_done = false;
  int prog_status = 0;
  std::int64_t give_up_ns = 0;
  for (;;) {
    for (;;) {  // reap P and every adopted orphan
      int st = 0;
      const pid_t w = waitpid(-1, &st, WNOHANG);
      if (w > 0) {
        if (w == prog) {
          prog_done = true;
          prog_status = st;
          send_ctl(kCtlFd, kExited, st);
          kill(0, SIGTERM);  // the run is over: what P left in the group goes too (S has TERM blocked)
          give_up_ns = mono_ns() + std::chrono::nanoseconds(kKillGrace).count();
        }
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && prog_done) mirror(prog_status);  // ECHILD: no descendant left
      break;
    }
    siginfo_t si;
    int sig;
    if (prog_done) {
      // Stragglers after the grace: exit anyway; the worker SIGKILLs the group when it sees S gone.
      const std::int64_t left = give_up_ns - mono_ns();
      if (left <= 0) mirror(prog_status);
      const timespec ts{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
      sig = sigtimedwait(&waited, &si, &ts);
    } else {
      sig = sigwaitinfo(&waited, &si);
    }
    if (sig == kParentDeathSignal && getppid() != l.daemon) {
      kill(0, SIGKILL);  // the daemon is gone: the whole group, S included
      _exit(127);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The worker's side

class Fd {
 public:
  explicit Fd(int fd = -1) noexcept : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const noexcept { return fd_; }
  void reset() noexcept {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

[[noreturn]] void fail_errno(const char* what) {
  throw std::runtime_error(std::string("exec: ") + what + ": " + std::strerror(errno));
}

// The last kOutputCap bytes of the output; reads go straight into it.
class OutputRing {
 public:
  ssize_t read_from(int fd) {
    const ssize_t n = read(fd, buf_.data() + pos_, buf_.size() - pos_);
    if (n > 0) {
      pos_ += static_cast<std::size_t>(n);
      if (pos_ == buf_.size()) {
        pos_ = 0;
        wrapped_ = true;
      }
    }
    return n;
  }
  std::string text() const { return wrapped_ ? buf_.substr(pos_) + buf_.substr(0, pos_) : buf_.substr(0, pos_); }

 private:
  std::string buf_ = std::string(kOutputCap, '\0');
  std::size_t pos_ = 0;
  bool wrapped_ = false;
};

// Reads what the pipe holds now, up to `budget` bytes; false once it is at EOF (or broken).
bool drain(int fd, OutputRing& out, std::size_t budget) {
  while (budget > 0) {
    const ssize_t n = out.read_from(fd);
    if (n > 0) {
      budget -= std::min(budget, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 && errno == EAGAIN;
    }
  }
  return true;
}

// Until reaped, kills the run's group and reaps S (an exception must not leave a run behind).
struct SupervisorGuard {
  pid_t pid;
  bool reaped = false;
  ~SupervisorGuard() {
    if (reaped) return;
    kill(-pid, SIGKILL);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
};

// With an allow list: the program argv[0] names (the first PATH candidate that is an
// executable file, relative ones taken from the run's cwd), resolved through symlinks, must be
// one of `allow` (canonical paths); the run then executes exactly that file.
void restrict_program(Launch& l, const Spec& s, const std::vector<std::string>& allow) {
  namespace fs = std::filesystem;
  std::string found;
  for (auto& cand : l.paths) {
    fs::path p(cand);
    if (p.is_relative() && s.cwd) p = fs::path(*s.cwd) / p;
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0) {
      found = fs::canonical(p, ec).string();
      if (!ec) break;
      found.clear();
    }
  }
  if (found.empty() || std::find(allow.begin(), allow.end(), found) == allow.end())
    throw std::runtime_error("exec: program '" + shown(found.empty() ? s.argv[0] : found) +
                             "' is not allowed by --exec-allow");
  l.paths = {found};
  l.candidates = {l.paths[0].c_str(), nullptr};
}

std::string run_spec(const Spec& s, const TaskRecord& t, std::stop_token stop, const std::vector<std::string>& allow = {}) {
  if (stop.stop_requested()) throw std::runtime_error("exec: stopped before the program started");
  Launch l;
  prepare(l, s, t);
  if (!allow.empty()) restrict_program(l, s, allow);
  OutputRing out;
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) fail_errno("pipe");
  Fd out_r(p[0]), out_w(p[1]);
  if (pipe2(p, O_CLOEXEC) != 0) fail_errno("pipe");
  Fd ctl_r(p[0]), ctl_w(p[1]);
  // Only our ends are non-blocking (the program's stdout stays an ordinary blocking pipe).
  if (fcntl(out_r.get(), F_SETFL, O_NONBLOCK) != 0 || fcntl(ctl_r.get(), F_SETFL, O_NONBLOCK) != 0) fail_errno("fcntl");
  Fd wake(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (wake.get() < 0) fail_errno("eventfd");
  l.out_w = out_w.get();
  l.ctl_w = ctl_w.get();
  // A stop request wakes the poll below at once (declared after `wake`: destroyed before it).
  std::stop_callback on_stop(stop, [fd = wake.get()] {
    const std::uint64_t one = 1;
    while (write(fd, &one, sizeof one) < 0 && errno == EINTR) {
    }
  });

  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t sup = fork();
  if (sup == 0) supervise(l);
  const int fork_errno = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (sup < 0) throw std::runtime_error(std::string("exec: fork: ") + std::strerror(fork_errno));
  SupervisorGuard guard{sup};
  setpgid(sup, sup);  // as S does itself: whichever runs first, kill(-sup) finds the group
  out_w.reset();
  ctl_w.reset();
  Fd sup_fd(static_cast<int>(syscall(SYS_pidfd_open, sup, 0)));  // -1 without pidfds: poll every 50 ms

  enum class End { none, timed_out, stopped } ended_by = End::none;
  const auto deadline = s.timeout ? steady::now() + *s.timeout : steady::time_point::max();
  auto kill_at = steady::time_point::max();
  bool sent_kill = false, out_open = true, ctl_open = true, sup_lost = false;
  std::optional<int> prog_status;
  std::optional<CtlMsg> start_error;
  auto read_ctl = [&] {
    for (;;) {
      CtlMsg m{};
      const ssize_t n = read(ctl_r.get(), &m, sizeof m);
      if (n == static_cast<ssize_t>(sizeof m)) {
        if (m.kind == kExited) prog_status = m.value;
        else if (!start_error) start_error = m;
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        if (!(n < 0 && errno == EAGAIN)) ctl_open = false;
        return;
      }
    }
  };

  for (;;) {
    const auto now = steady::now();
    const bool stop_now = stop.stop_requested();
    if (!prog_status && ended_by == End::none && (stop_now || now >= deadline)) {
      ended_by = stop_now ? End::stopped : End::timed_out;
      kill(-sup, SIGTERM);
      kill_at = now + kKillGrace;
    } else if (prog_status && (stop_now || now >= deadline)) {
      kill_at = std::min(kill_at, now);  // P is done, its leftovers had their SIGTERM from S
    }
    if (!sent_kill && now >= kill_at) {
      kill(-sup, SIGKILL);
      sent_kill = true;
    }

    auto next = sent_kill ? steady::time_point::max() : kill_at;
    if (ended_by == End::none && !sent_kill) next = std::min(next, deadline);
    int timeout_ms = -1;
    if (next != steady::time_point::max())
      timeout_ms = static_cast<int>(std::clamp<std::int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1, 0, 3'600'000));
    if (sup_fd.get() < 0) timeout_ms = timeout_ms < 0 ? 50 : std::min(timeout_ms, 50);
    pollfd fds[4];
    nfds_t n = 0;
    int out_i = -1, ctl_i = -1;
    if (out_open) fds[out_i = static_cast<int>(n++)] = {out_r.get(), POLLIN, 0};
    if (ctl_open) fds[ctl_i = static_cast<int>(n++)] = {ctl_r.get(), POLLIN, 0};
    fds[n++] = {wake.get(), POLLIN, 0};
    if (sup_fd.get() >= 0) fds[n++] = {sup_fd.get(), POLLIN, 0};
    if (poll(fds, n, timeout_ms) < 0 && errno != EINTR) fail_errno("poll");
    if (out_i >= 0 && fds[out_i].revents != 0) out_open = drain(out_r.get(), out, kDrainBudget);
    if (ctl_i >= 0 && fds[ctl_i].revents != 0) read_ctl();
    std::uint64_t ignored;
    while (read(wake.get(), &ignored, sizeof ignored) < 0 && errno == EINTR) {
    }

    siginfo_t si{};
    if (waitid(P_PID, static_cast<id_t>(sup), &si, WEXITED | WNOHANG | WNOWAIT) == 0) {
      if (si.si_pid == sup) break;  // S exited: a zombie, its pid still names the group
    } else if (errno == ECHILD) {
      sup_lost = true;  // reaped behind our back (SIGCHLD ignored): the group's name is no longer ours
      break;
    }
  }

  int sup_status = 0;
  if (!sup_lost) {
    kill(-sup, SIGKILL);  // stragglers that outlasted S's grace
    while (waitpid(sup, &sup_status, 0) < 0 && errno == EINTR) {
    }
  }
  guard.reaped = true;
  if (ctl_open) read_ctl();  // S and P wrote everything before S exited
  // What the pipe still holds; writers that escaped the group cannot keep the run going.
  if (out_open) drain(out_r.get(), out, kDrainBudget);

  if (start_error) {
    const std::string why = std::strerror(start_error->value);
    if (start_error->kind == kCwdFailed) throw std::runtime_error("exec: cwd '" + shown(*s.cwd) + "': " + why);
    if (start_error->kind == kExecFailed) throw std::runtime_error("exec: cannot run '" + shown(s.argv[0]) + "': " + why);
    throw std::runtime_error("exec: cannot start the program: " + why);
  }
  const int status = prog_status ? *prog_status : sup_status;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
  nlohmann::json result = {{"exit_code", code}, {"output", out.text()}};
  std::string text = result.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (ended_by != End::none)
    throw std::runtime_error(std::string(ended_by == End::timed_out ? "exec: timed out" : "exec: stopped") + "; " + text);
  if (code != 0) throw std::runtime_error("exec: exit code " + std::to_string(code) + "; " + text);
  return text;
}

}  // namespace

void validate_exec_payload(std::string_view payload) { parse_spec(payload); }

Handler exec_handler() {
  return [](const TaskContext& c) { return run_spec(parse_spec(c.task.payload), c.task, c.stop); };
}

Handler exec_handler(const ExecOptions& opts) {
  std::vector<std::string> allow;
  for (auto& a : opts.allow) {
    std::error_code ec;
    auto c = std::filesystem::canonical(a, ec);
    allow.push_back(ec ? a : c.string());
  }
  if (allow.empty()) return exec_handler();
  return [allow](const TaskContext& c) { return run_spec(parse_spec(c.task.payload), c.task, c.stop, allow); };
}

}  // namespace taskpool
