// tests/exec_handler_test.cpp — the built-in exec handler called directly (no daemon): signals
// reach the program, the timeout and the stop bound the whole run, nothing a run started
// outlives it, output is capped while it is read, the environment has one entry per name, and
// payloads are refused at validation exactly as the handler would refuse them.
//
// Every run happens on a thread that blocks the signals `taskpool serve` blocks (its worker
// threads inherit that mask), so the programs here see what the daemon's programs see.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <future>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/process_util.hpp"
#include "common/test_util.hpp"
#include "taskpool/exec_handler.hpp"

namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using taskpool::test::TempDir;
using taskpool::test::wait_until;

struct Outcome {
  bool ok = false;
  std::string text;  // the result, or the error message
};

// One run of the handler on its own thread (with serve's signal mask). A run that hangs (the
// bug some tests look for) is left behind rather than joined, so the suite goes on.
class HandlerRun {
 public:
  explicit HandlerRun(std::string payload) : state_(std::make_shared<State>()) {
    state_->task.id = 42;
    state_->task.exec_task = "exec";
    state_->task.payload = std::move(payload);
    state_->task.attempts = 1;
    done_ = state_->result.get_future();
    thread_ = std::thread([st = state_] {
      sigset_t s;
      sigemptyset(&s);
      for (int sig : {SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU}) sigaddset(&s, sig);
      pthread_sigmask(SIG_BLOCK, &s, nullptr);
      Outcome o;
      try {
        o = {true, taskpool::exec_handler()(taskpool::TaskContext{st->task, st->stop.get_token()})};
      } catch (const std::exception& e) {
        o = {false, e.what()};
      }
      st->result.set_value(std::move(o));
    });
  }
  ~HandlerRun() {
    if (done_.valid() && done_.wait_for(10s) != std::future_status::ready) {
      thread_.detach();
    } else {
      thread_.join();
    }
  }
  HandlerRun(const HandlerRun&) = delete;
  HandlerRun& operator=(const HandlerRun&) = delete;

  void stop() { state_->stop.request_stop(); }
  // The outcome, or nullopt when the handler has not returned within `limit` (a hang guard).
  std::optional<Outcome> wait(std::chrono::seconds limit = 60s) {
    if (done_.wait_for(limit) != std::future_status::ready) return std::nullopt;
    return done_.get();
  }

 private:
  struct State {
    taskpool::TaskRecord task;
    std::stop_source stop;
    std::promise<Outcome> result;
  };
  std::shared_ptr<State> state_;
  std::future<Outcome> done_;
  std::thread thread_;
};

Outcome run(const json& payload) {
  HandlerRun r(payload.dump());
  auto o = r.wait();
  EXPECT_TRUE(o.has_value()) << "the handler did not return";
  return o.value_or(Outcome{false, "hung"});
}

json sh(const std::string& script) { return {{"argv", {"sh", "-c", script}}}; }

// The result JSON of an outcome: the whole text, or what follows "; " in an error.
json result_of(const Outcome& o) {
  auto at = o.ok ? 0 : o.text.find("; ");
  if (at == std::string::npos) return json();
  return json::parse(o.text.substr(o.ok ? 0 : at + 2));
}

// A pid a program writes: "echo $! > tmp && mv tmp file" makes the file appear complete.
std::string write_pid(const std::string& pid_expr, const std::string& file) {
  return "echo " + pid_expr + " > " + file + ".tmp && mv " + file + ".tmp " + file;
}

TEST(ExecHandler, RunsAProgramAndReportsItsOutput) {
  auto o = run(sh("echo out; echo err >&2"));
  ASSERT_TRUE(o.ok) << o.text;
  auto r = result_of(o);
  EXPECT_EQ(r["exit_code"], 0);
  EXPECT_EQ(r["output"], "out\nerr\n");
}

TEST(ExecHandler, ExitCodesAndSignalsOfTheProgram) {
  auto o = run(sh("echo bye; exit 3"));
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.text.rfind("exec: exit code 3; ", 0), 0u) << o.text;
  EXPECT_EQ(result_of(o)["output"], "bye\n");
  o = run(sh("kill -KILL $$"));
  EXPECT_EQ(o.text.rfind("exec: exit code 137; ", 0), 0u) << o.text;
  // Not blocked in the program, though the worker thread blocks it.
  o = run(sh("kill -TERM $$; echo survived"));
  EXPECT_EQ(o.text.rfind("exec: exit code 143; ", 0), 0u) << o.text;
}

// Whether some process runs with exactly this command line (NUL-separated, as in /proc).
bool running_with_cmdline(const std::string& cmdline) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
    std::ifstream in(it->path() / "cmdline");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text == cmdline) return true;
  }
  return false;
}

// Invariant: a stop gives the program its SIGTERM first (then SIGKILL 2 s later), although the
// worker thread that runs the handler blocks SIGTERM, as serve's threads do.
TEST(ExecHandler, SigtermReachesTheProgram) {
  TempDir dir;
  auto ready = dir.file("ready");
  HandlerRun r(sh("trap 'echo got-term; exit 0' TERM; touch " + ready + "; sleep 1000 & wait").dump());
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(ready); }));
  r.stop();
  auto o = r.wait();
  ASSERT_TRUE(o.has_value());
  EXPECT_FALSE(o->ok);
  EXPECT_EQ(o->text.rfind("exec: stopped; ", 0), 0u) << o->text;
  EXPECT_EQ(result_of(*o)["output"], "got-term\n") << o->text;
  // A program that leaves its mask alone (dash clears its own, which hides the bug): it dies of
  // SIGTERM (143), not of the SIGKILL that follows 2 s later (137).
  HandlerRun r2(json{{"argv", {"sleep", "999.4242"}}}.dump());
  ASSERT_TRUE(wait_until([] { return running_with_cmdline(std::string("sleep\0999.4242\0", 15)); }));
  r2.stop();
  o = r2.wait();
  ASSERT_TRUE(o.has_value());
  EXPECT_EQ(o->text.rfind("exec: stopped; ", 0), 0u) << o->text;
  EXPECT_EQ(result_of(*o)["exit_code"], 143) << o->text;
}

// Invariant: the program starts with no signal blocked and none ignored, whatever the daemon
// blocks (serve: INT, TERM, USR1, USR2, TTIN, TTOU) or ignores (SIGPIPE).
TEST(ExecHandler, ProgramStartsWithAnEmptyMaskAndDefaultDispositions) {
  struct sigaction ign {}, old {};
  ign.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ign, &old);
  auto o = run({{"argv", {"cat", "/proc/self/status"}}});
  sigaction(SIGPIPE, &old, nullptr);
  ASSERT_TRUE(o.ok) << o.text;
  std::map<std::string, std::string> status;
  std::istringstream in(result_of(o)["output"].get<std::string>());
  for (std::string line; std::getline(in, line);) {
    auto colon = line.find(':');
    auto value = line.find_first_not_of(" \t", colon + 1);
    if (colon != std::string::npos && value != std::string::npos) status[line.substr(0, colon)] = line.substr(value);
  }
  EXPECT_EQ(status["SigBlk"], "0000000000000000");
  EXPECT_EQ(status["SigIgn"], "0000000000000000");
}

// Invariant: a background grandchild that keeps the output pipe open neither keeps the run
// going past its timeout nor outlives the run.
TEST(ExecHandler, BackgroundGrandchildNeitherExtendsNorOutlivesTheRun) {
  TempDir dir;
  auto grand = dir.file("grand");
  json p = sh("sleep 1000 & " + write_pid("$!", grand) + "; echo started");
  p["timeout"] = "1s";
  HandlerRun r(p.dump());
  auto o = r.wait();
  pid_t g = taskpool::test::read_pid(grand);
  if (!o) taskpool::test::kill_all({g});  // the old handler waits for the grandchild: unblock it
  ASSERT_TRUE(o.has_value()) << "the run outlived its timeout";
  // The program itself finished in time: its outcome stands.
  EXPECT_TRUE(o->ok) << o->text;
  EXPECT_EQ(result_of(*o)["output"], "started\n");
  ASSERT_GT(g, 0);
  EXPECT_TRUE(taskpool::test::all_gone({g})) << "grandchild " << g << " outlived the run";
  taskpool::test::kill_all({g});
}

// Invariant: on timeout the whole group goes, the program and its background children.
TEST(ExecHandler, TimeoutKillsTheWholeGroup) {
  TempDir dir;
  auto prog = dir.file("prog"), grand = dir.file("grand");
  json p = sh("sleep 1000 & " + write_pid("$!", grand) + "; " + write_pid("$$", prog) + "; wait");
  p["timeout"] = "1s";
  auto o = run(p);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.text.rfind("exec: timed out; ", 0), 0u) << o.text;
  std::vector<pid_t> pids{taskpool::test::read_pid(prog), taskpool::test::read_pid(grand)};
  EXPECT_TRUE(taskpool::test::all_gone(pids));
  taskpool::test::kill_all(pids);
}

// Invariant: what the program leaves in its group when it exits is killed, with SIGKILL when it
// ignores SIGTERM — no process of a run outlives the run.
TEST(ExecHandler, LeftoversAreKilledEvenWhenTheyIgnoreSigterm) {
  TempDir dir;
  auto grand = dir.file("grand");
  HandlerRun r(sh("(trap '' TERM; exec sleep 1000) & " + write_pid("$!", grand) + "; echo started").dump());
  auto o = r.wait();
  pid_t g = taskpool::test::read_pid(grand);
  if (!o) taskpool::test::kill_all({g});
  ASSERT_TRUE(o.has_value());
  EXPECT_TRUE(o->ok) << o->text;
  ASSERT_GT(g, 0);
  EXPECT_TRUE(taskpool::test::all_gone({g})) << "grandchild " << g << " outlived the run";
  taskpool::test::kill_all({g});
}

long vm_hwm_kb() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

// Invariant: the output is capped while it is read: a 200 MB writer left behind by the program
// neither grows the reader's memory nor the result past 64 KiB.
TEST(ExecHandler, OutputIsCappedWhileItIsRead) {
  std::ofstream("/proc/self/clear_refs") << "5";  // reset the peak RSS (where allowed)
  const long before = vm_hwm_kb();
  auto o = run(sh("head -c 200000000 /dev/zero & exit 0"));
  const long grown_kb = vm_hwm_kb() - before;
  EXPECT_TRUE(o.ok) << o.text.substr(0, 200);
  EXPECT_LE(result_of(o)["output"].get<std::string>().size(), 64u * 1024);
  EXPECT_LT(grown_kb, 100 * 1024) << "peak RSS grew by " << grown_kb << " kB";
}

// Invariant: the result keeps the last 64 KiB of the output, in order.
TEST(ExecHandler, ResultKeepsTheLastBytes) {
  auto o = run({{"argv", {"seq", "1", "300000"}}});
  ASSERT_TRUE(o.ok);
  auto out = result_of(o)["output"].get<std::string>();
  EXPECT_EQ(out.size(), 64u * 1024);
  EXPECT_EQ(out.substr(out.size() - 14), "299999\n300000\n");
  std::istringstream lines(out.substr(out.find('\n') + 1));  // the first line may be cut
  long prev = 0, n = 0;
  for (std::string line; std::getline(lines, line); prev = n) {
    n = std::stol(line);
    if (prev != 0) {
      ASSERT_EQ(n, prev + 1);
    }
  }
}

std::multimap<std::string, std::string> child_environment(const json& payload) {
  auto o = run(payload);
  EXPECT_TRUE(o.ok) << o.text;
  std::multimap<std::string, std::string> env;
  auto text = result_of(o)["output"].get<std::string>();
  std::size_t i = 0;
  while (i < text.size()) {  // env -0: NAME=value entries, each ending in a NUL
    auto end = text.find('\0', i);
    std::string kv = text.substr(i, end - i);
    env.emplace(kv.substr(0, kv.find('=')), kv.substr(kv.find('=') + 1));
    i = end == std::string::npos ? text.size() : end + 1;
  }
  return env;
}

// Invariant: the program's environment has one entry per name: the payload's value replaces an
// inherited one, and the handler's TASKPOOL_* replace inherited ones.
TEST(ExecHandler, EnvironmentHasOneEntryPerName) {
  setenv("TASKPOOL_EXEC_TEST_VAR", "outer", 1);
  setenv("TASKPOOL_TASK_ID", "999", 1);
  auto env = child_environment({{"argv", {"env", "-0"}},
                                {"env", {{"TASKPOOL_EXEC_TEST_VAR", "inner"}, {"TASKPOOL_EXEC_TEST_NEW", "new"}}}});
  unsetenv("TASKPOOL_EXEC_TEST_VAR");
  unsetenv("TASKPOOL_TASK_ID");
  for (auto& [name, value] : env) EXPECT_EQ(env.count(name), 1u) << name;
  EXPECT_EQ(env.find("TASKPOOL_EXEC_TEST_VAR")->second, "inner");
  EXPECT_EQ(env.find("TASKPOOL_EXEC_TEST_NEW")->second, "new");
  EXPECT_EQ(env.find("TASKPOOL_TASK_ID")->second, "42");
  EXPECT_EQ(env.find("TASKPOOL_ATTEMPT")->second, "1");
  EXPECT_EQ(env.count("TASKPOOL_EXEC_TIME"), 1u);
}

// Invariant: the TASKPOOL_* variables the handler sets cannot be set by a payload: validation
// refuses it naming the variable, and so does the handler (the program does not run).
TEST(ExecHandler, PayloadMayNotSetTheHandlersVariables) {
  TempDir dir;
  auto ran = dir.file("ran");
  for (std::string name : {"TASKPOOL_TASK_ID", "TASKPOOL_EXEC_TIME", "TASKPOOL_ATTEMPT"}) {
    json p = sh("touch " + ran);
    p["env"] = {{name, "7"}};
    try {
      taskpool::validate_exec_payload(p.dump());
      ADD_FAILURE() << name << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).rfind("exec: ", 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    auto o = run(p);
    EXPECT_FALSE(o.ok);
    EXPECT_NE(o.text.find(name), std::string::npos) << o.text;
  }
  EXPECT_FALSE(std::filesystem::exists(ran));
}

// The program is looked up in the child's PATH: the payload's, when it sets one.
TEST(ExecHandler, ProgramIsLookedUpInTheChildsPath) {
  TempDir dir;
  {
    std::ofstream(dir.file("taskpool-test-prog")) << "#!/bin/sh\necho found\n";
  }
  chmod(dir.file("taskpool-test-prog").c_str(), 0755);
  auto o = run({{"argv", {"taskpool-test-prog"}}, {"env", {{"PATH", dir.path().string() + ":/bin:/usr/bin"}}}});
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(result_of(o)["output"], "found\n");
}

// A missing directory and a missing program are told apart.
TEST(ExecHandler, MissingDirectoryAndMissingProgramAreToldApart) {
  auto o = run({{"argv", {"true"}}, {"cwd", "/nonexistent-taskpool-dir"}});
  EXPECT_EQ(o.text, "exec: cwd '/nonexistent-taskpool-dir': No such file or directory");
  o = run({{"argv", {"no-such-taskpool-program"}}});
  EXPECT_EQ(o.text, "exec: cannot run 'no-such-taskpool-program': No such file or directory");
  o = run({{"argv", {"/nonexistent-taskpool-dir/prog"}}, {"cwd", "/"}});
  EXPECT_EQ(o.text, "exec: cannot run '/nonexistent-taskpool-dir/prog': No such file or directory");
  o = run({{"argv", {"./relative-prog"}}, {"cwd", "/"}});
  EXPECT_EQ(o.text, "exec: cannot run './relative-prog': No such file or directory");
}

TEST(ExecHandler, RunsInTheGivenDirectory) {
  auto o = run({{"argv", {"pwd"}}, {"cwd", "/"}});
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(result_of(o)["output"], "/\n");
}

TEST(ExecHandler, StopBeforeTheStartRunsNothing) {
  TempDir dir;
  taskpool::TaskRecord t;
  t.payload = sh("touch " + dir.file("ran")).dump();
  std::stop_source stop;
  stop.request_stop();
  EXPECT_THROW(taskpool::exec_handler()(taskpool::TaskContext{t, stop.get_token()}), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(dir.file("ran")));
}

// Invariant: validation refuses every payload the handler would refuse at run time, with one
// line that starts with "exec: " and names the field; the handler refuses it the same way.
TEST(ExecValidate, RefusesEachBadFormNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> bad{
      {"not json", "JSON"},
      {"", "JSON"},
      {"[]", "object"},
      {"\"argv\"", "object"},
      {"42", "object"},
      {"null", "object"},
      {"{}", "\"argv\""},
      {R"({"argv": []})", "\"argv\""},
      {R"({"argv": "ls"})", "\"argv\""},
      {R"({"argv": {"0": "ls"}})", "\"argv\""},
      {R"({"argv": [1]})", "\"argv[0]\""},
      {R"({"argv": ["ls", null]})", "\"argv[1]\""},
      {R"({"argv": [""]})", "\"argv[0]\""},
      {R"({"argv": ["ls", "a\u0000b"]})", "\"argv[1]\""},
      {R"({"argv": ["ls"], "timeout": "bogus"})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": "0s"})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": "0"})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": "-1s"})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": ""})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": 30})", "\"timeout\""},
      {R"({"argv": ["ls"], "timeout": "200000d"})", "\"timeout\""},
      {R"({"argv": ["ls"], "cwd": 5})", "\"cwd\""},
      {R"({"argv": ["ls"], "cwd": ""})", "\"cwd\""},
      {R"({"argv": ["ls"], "cwd": "/t\u0000mp"})", "\"cwd\""},
      {R"({"argv": ["ls"], "env": ["A=1"]})", "\"env\""},
      {R"({"argv": ["ls"], "env": "A=1"})", "\"env\""},
      {R"({"argv": ["ls"], "env": {"A": 1}})", "\"A\""},
      {R"({"argv": ["ls"], "env": {"A": null}})", "\"A\""},
      {R"({"argv": ["ls"], "env": {"": "x"}})", "\"env\""},
      {R"({"argv": ["ls"], "env": {"A=B": "x"}})", "A=B"},
      {R"({"argv": ["ls"], "env": {"A\u0000B": "x"}})", "A\\u0000B"},
      {R"({"argv": ["ls"], "env": {"A": "x\u0000y"}})", "\"A\""},
      {R"({"argv": ["ls"], "env": {"TASKPOOL_TASK_ID": "1"}})", "TASKPOOL_TASK_ID"},
      {R"({"argv": ["ls"], "env": {"multi\nline": 1}})", "multi\\nline"},
      {R"({"argv": ["ls"], "bogus": 1})", "\"bogus\""},
      {R"({"argv": ["ls"], "Argv": ["ls"]})", "\"Argv\""},
  };
  for (auto& [payload, field] : bad) {
    std::string msg;
    try {
      taskpool::validate_exec_payload(payload);
      ADD_FAILURE() << "accepted: " << payload;
      continue;
    } catch (const std::invalid_argument& e) {
      msg = e.what();
    }
    EXPECT_EQ(msg.rfind("exec: ", 0), 0u) << payload << " -> " << msg;
    EXPECT_NE(msg.find(field), std::string::npos) << payload << " -> " << msg << " (should name " << field << ")";
    EXPECT_EQ(msg.find('\n'), std::string::npos) << payload << " -> " << msg;
    taskpool::TaskRecord t;
    t.payload = payload;
    std::stop_source stop;
    try {
      taskpool::exec_handler()(taskpool::TaskContext{t, stop.get_token()});
      ADD_FAILURE() << "the handler ran " << payload;
    } catch (const std::exception& e) {
      EXPECT_EQ(std::string(e.what()), msg) << payload;
    }
  }
}

TEST(ExecValidate, AcceptsGoodPayloads) {
  for (std::string payload : {
           R"({"argv": ["true"]})",
           R"({"argv": ["sh", "-c", "echo $X", ""]})",
           R"({"argv": ["true"], "timeout": "1h30m"})",
           R"({"argv": ["true"], "timeout": "250ms"})",
           R"({"argv": ["true"], "timeout": "18250d"})",
           R"({"argv": ["true"], "cwd": "/tmp"})",
           R"({"argv": ["true"], "env": {}})",
           R"({"argv": ["true"], "env": {"PATH": "/bin", "X": "", "TASKPOOL_DB": "/x.db"}})",
           R"({"timeout": "30s", "env": {"A": "1"}, "cwd": "/", "argv": ["true"]})",
       })
    EXPECT_NO_THROW(taskpool::validate_exec_payload(payload)) << payload;
}

}  // namespace
