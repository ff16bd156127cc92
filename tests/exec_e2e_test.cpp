// tests/exec_e2e_test.cpp — the exec handler inside real `taskpool serve` daemons: programs and
// what they start die with a SIGKILLed daemon, and a daemon's shutdown gives them SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/cli_fixture.hpp"
#include "common/process_util.hpp"

namespace {

using nlohmann::json;
using taskpool::test::CliTest;
using taskpool::test::read_pid;
using taskpool::test::wait_until;

class ExecE2eTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // Orphans come to this process, which reaps them: a container's first process may never
    // reap, and a zombie would look alive to kill(pid, 0).
    prctl(PR_SET_CHILD_SUBREAPER, 1);
  }
  void TearDown() override {
    taskpool::test::kill_all(started_);
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    prctl(PR_SET_CHILD_SUBREAPER, 0);
    CliTest::TearDown();
  }
  std::string file(const std::string& name) { return (dir_ / name).string(); }
  // Adds an exec task running `script` under sh; returns its id.
  std::string add_sh(const std::string& script) {
    auto r = cli({"add", "--type", "exec", "--payload", json{{"argv", {"sh", "-c", script}}}.dump()});
    EXPECT_EQ(r.rc, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }
  std::vector<pid_t> started_;  // every pid a program wrote: killed in TearDown, whatever happened
};

std::string write_pid(const std::string& pid_expr, const std::string& file) {
  return "echo " + pid_expr + " > " + file + ".tmp && mv " + file + ".tmp " + file;
}

// Invariant (no program outlives its daemon): after each SIGKILL of a `serve` daemon, every
// program it was running and the background processes those started are gone within a
// bounded wait, so a task that the next daemon recovers never runs twice at once.
TEST_F(ExecE2eTest, ProgramsDieWithTheirDaemon) {
  const int rounds = static_cast<int>(taskpool::test::scaled(6));
  for (int round = 0; round < rounds; ++round) {
    pid_t daemon = serve({"--lease", "1s"});  // the shortest lease the dispatcher allows
    ASSERT_TRUE(serving());
    std::vector<std::string> progs, grands;
    for (int i = 0; i < 2; ++i) {
      auto tag = "r" + std::to_string(round) + "t" + std::to_string(i);
      progs.push_back(file(tag + ".prog"));
      grands.push_back(file(tag + ".grand"));
      // A rerun after recovery (the row was left running) finds its file and ends at once.
      add_sh("test -e " + progs.back() + " && exit 0; " + write_pid("$$", progs.back()) + "; sleep 1000 & " +
             write_pid("$!", grands.back()) + "; wait");
    }
    ASSERT_TRUE(wait_until([&] {
      for (auto& g : grands)
        if (!std::filesystem::exists(g)) return false;
      return true;
    })) << "the programs did not start";
    std::vector<pid_t> pids;
    for (auto& f : progs) pids.push_back(read_pid(f));
    for (auto& f : grands) pids.push_back(read_pid(f));
    started_.insert(started_.end(), pids.begin(), pids.end());
    kill(daemon, SIGKILL);
    wait_exit(daemon);
    ASSERT_TRUE(taskpool::test::all_gone(pids)) << "a program outlived its daemon (round " << round << ")";
  }
}

// Invariant: the daemon's programs start with no signal blocked and none ignored, although
// serve blocks INT, TERM, USR1, USR2, TTIN and TTOU in every thread.
TEST_F(ExecE2eTest, ProgramsStartWithNoSignalBlocked) {
  pid_t daemon = serve();
  ASSERT_TRUE(serving());
  auto r = cli({"add", "--type", "exec", "--payload", R"({"argv": ["cat", "/proc/self/status"]})"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto id = std::stoll(r.out);
  auto s = store();
  ASSERT_TRUE(wait_until([&] {
    auto t = s->get(id);
    return t && t->status != taskpool::TaskStatus::waiting && t->status != taskpool::TaskStatus::running;
  }));
  auto t = s->get(id);
  ASSERT_EQ(t->status, taskpool::TaskStatus::done) << t->last_error.value_or("");
  auto output = json::parse(t->result.value_or("{}")).value("output", "");
  EXPECT_NE(output.find("SigBlk:\t0000000000000000\n"), std::string::npos) << output;
  EXPECT_NE(output.find("SigIgn:\t0000000000000000\n"), std::string::npos) << output;
  kill(daemon, SIGTERM);
  EXPECT_EQ(wait_exit(daemon), 0);
}

// Invariant: when the daemon stops and the grace runs out, its programs get SIGTERM (they can
// clean up) — not only the SIGKILL 2 s later — although serve blocks SIGTERM in its threads.
// (dash clears its own signal mask at start, so this passes with an inherited mask too; the
// test above is the one that sees the mask.)
TEST_F(ExecE2eTest, ShutdownGivesProgramsTheirSigterm) {
  pid_t daemon = serve({"--grace", "100ms"});
  ASSERT_TRUE(serving());
  auto got_term = file("got-term"), prog = file("prog");
  add_sh("trap 'touch " + got_term + "; exit 0' TERM; " + write_pid("$$", prog) + "; sleep 1000 & wait");
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(prog); }));
  started_.push_back(read_pid(prog));
  kill(daemon, SIGTERM);
  EXPECT_EQ(wait_exit(daemon), 0);
  EXPECT_TRUE(std::filesystem::exists(got_term));
  EXPECT_TRUE(taskpool::test::all_gone(started_));
}

// Invariant (#16.2, through a real daemon): a background process neither extends nor outlives
// its run. `sh -c 'sleep 1000 & ...; echo started'` ends with its shell (done, its own result),
// not when the background sleep closes the pipe (the old daemon waited 1000 s, past the 1 s
// timeout, then said done), and the sleep is killed with the rest of the group. The waits are
// hang guards (30 s, far below the sleep), not timing assertions.
TEST_F(ExecE2eTest, BackgroundProcessesNeitherExtendNorOutliveTheRunThroughServe) {
  pid_t daemon = serve();
  ASSERT_TRUE(serving());
  auto grand = file("grand");
  auto r = cli({"add", "--type", "exec", "--payload",
                json{{"argv", {"sh", "-c", "sleep 1000 & " + write_pid("$!", grand) + "; echo started"}}, {"timeout", "1s"}}
                    .dump()});
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto id = std::stoll(r.out);
  ASSERT_TRUE(wait_until([&] { return std::filesystem::exists(grand); }));
  started_.push_back(read_pid(grand));
  auto s = store();
  ASSERT_TRUE(wait_until([&] {
    auto t = s->get(id);
    return t && t->status != taskpool::TaskStatus::waiting && t->status != taskpool::TaskStatus::running;
  }));
  auto t = s->get(id);
  EXPECT_EQ(t->status, taskpool::TaskStatus::done) << t->last_error.value_or("");
  EXPECT_NE(t->result.value_or("").find("started"), std::string::npos) << t->result.value_or("");
  EXPECT_TRUE(taskpool::test::all_gone(started_));
  kill(daemon, SIGTERM);
  EXPECT_EQ(wait_exit(daemon), 0);
}

}  // namespace
