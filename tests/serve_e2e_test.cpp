// tests/serve_e2e_test.cpp — the dispatcher's promises checked with real `taskpool serve`
// daemons: one run of a task at a time across cancel/retry, outcomes kept across a failed commit,
// no spinning on rows it cannot take, work shared between daemons, and a stress test with two
// daemons racing the command's cancel/retry/upsert/extend.
//
// Programs mark their runs in files (appends of one short line are atomic), so the checks read
// what really ran, not what the database says.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/cli_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/sqlite_store.hpp"

using namespace std::chrono_literals;

namespace {

using taskpool::TaskStatus;

class ServeE2E : public taskpool::test::CliTest {
 protected:
  std::vector<std::string> lines_of(const std::string& file) {
    std::ifstream f(dir_ / file);
    std::vector<std::string> out;
    for (std::string l; std::getline(f, l);) out.push_back(l);
    return out;
  }
  std::int64_t add_exec(const std::string& script, const std::vector<std::string>& extra = {}) {
    nlohmann::json payload = {{"argv", {"sh", "-c", script}}};
    std::vector<std::string> args{"add", "--type", "exec", "--payload", payload.dump()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    EXPECT_EQ(r.rc, 0) << r.err;
    return r.rc == 0 ? std::stoll(r.out) : -1;
  }
  // A shell script that marks its run's start and end in `file` (also when stopped by SIGTERM).
  std::string marked(const std::string& file, const std::string& body) {
    std::string f = (dir_ / file).string();
    return "trap 'echo end $TASKPOOL_TASK_ID $$ >> " + f + "; exit 143' TERM; echo start $TASKPOOL_TASK_ID $$ ${TAG:-} >> " + f +
           "; " + body + "; echo end $TASKPOOL_TASK_ID $$ >> " + f;
  }
  // Per task, runs must never overlap: every start follows the previous run's end.
  void expect_no_overlap(const std::string& file) {
    std::map<std::string, std::string> open;  // task id -> pid of the run in progress
    for (auto& l : lines_of(file)) {
      std::istringstream in(l);
      std::string what, id, pid;
      in >> what >> id >> pid;
      if (what == "start") {
        EXPECT_TRUE(open[id].empty()) << "task " << id << ": run " << pid << " started while run " << open[id] << " ran";
        open[id] = pid;
      } else if (what == "end" && open[id] == pid) {
        open[id].clear();
      }
    }
  }
  bool wait_status(std::int64_t id, TaskStatus s, std::chrono::seconds limit = 30s) {
    auto st = store();
    return taskpool::test::eventually(
        [&] {
          std::this_thread::sleep_for(5ms);
          auto r = st->get(id);
          return r && r->status == s;
        },
        limit);
  }
  // CPU seconds (user + system) a process has used.
  static double cpu_seconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), {});
    std::istringstream in(s.substr(s.rfind(')') + 1));
    std::string field;
    double ticks = 0;
    for (int i = 3; i <= 15 && (in >> field); ++i)
      if (i == 14 || i == 15) ticks += std::stod(field);
    return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  void stop_all(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) kill(p, SIGTERM);
    bool ok = true;
    for (pid_t p : pids) {
      int status = 0;
      bool ended = taskpool::test::eventually(
          [&] {
            std::this_thread::sleep_for(5ms);
            return waitpid(p, &status, WNOHANG) == p;
          },
          60s);
      if (!ended && std::getenv("TASKPOOL_E2E_GDB")) {  // diagnosis: where is it stuck?
        std::string cmd = "gdb -p " + std::to_string(p) + " -batch -ex 'thread apply all bt' 2>&1 | grep -E '^#|^Thread' | head -150";
        [[maybe_unused]] int r = std::system(cmd.c_str());
      }
      int rc = ended ? (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)) : wait_exit_within(p, 1s);
      EXPECT_EQ(rc, 0) << "daemon " << p;
      ok = ok && rc == 0;
    }
    if (!ok) {
      std::string log = log_text();
      ADD_FAILURE() << "log tail:\n" << log.substr(log.size() > 6000 ? log.size() - 6000 : 0);
    }
  }
};

// Invariant (#16.1): cancel + retry of a running one-shot task never makes two runs of it
// overlap, on the same daemon; the cancel reaches the running program (its SIGTERM mark).
TEST_F(ServeE2E, CancelAndRetryNeverOverlap) {
  pid_t pid = daemon({"--threads", "2", "--poll", "50ms"});
  ASSERT_TRUE(serving());
  auto id = add_exec(marked("marks", "sleep 2"));
  ASSERT_TRUE(taskpool::test::eventually([&] { return !lines_of("marks").empty(); }, 30s));
  ASSERT_EQ(cli({"cancel", std::to_string(id)}).rc, 0);
  ASSERT_EQ(cli({"retry", std::to_string(id)}).rc, 0);
  EXPECT_TRUE(wait_status(id, TaskStatus::done));
  stop_all({pid});
  auto marks = lines_of("marks");
  EXPECT_EQ(std::count_if(marks.begin(), marks.end(), [](auto& l) { return l.rfind("start", 0) == 0; }), 2);
  expect_no_overlap("marks");
}

// Invariant (#16.3): a group commit that fails (another process holds the write lock past the
// busy timeout) keeps the outcome and retries: the task ends done after one run, and the log
// says what happened (no "lost its lease").
TEST_F(ServeE2E, FailedCommitKeepsTheOutcome) {
  pid_t pid = daemon({"--threads", "1", "--poll", "50ms"}, {{"TASKPOOL_BUSY_TIMEOUT", "100ms"}});
  ASSERT_TRUE(serving());
  std::string go = (dir_ / "go").string();
  auto id = add_exec(marked("marks", "while [ ! -e " + go + " ]; do sleep 0.02; done"));
  ASSERT_TRUE(taskpool::test::eventually([&] { return !lines_of("marks").empty(); }, 30s));
  sqlite3* lock = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &lock), SQLITE_OK);
  sqlite3_busy_timeout(lock, 5000);
  ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  std::ofstream(go) << "go";
  // Hold the lock until the daemon has tried (and failed) to record the outcome.
  EXPECT_TRUE(taskpool::test::eventually(
      [&] {
        std::this_thread::sleep_for(5ms);
        return log_text().find("recording") != std::string::npos;
      },
      20s));
  std::this_thread::sleep_for(300ms);  // let a retry fail too (not an ordering the test needs)
  sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(lock);
  EXPECT_TRUE(wait_status(id, TaskStatus::done, 20s));
  stop_all({pid});
  auto marks = lines_of("marks");
  EXPECT_EQ(std::count_if(marks.begin(), marks.end(), [](auto& l) { return l.rfind("start", 0) == 0; }), 1);
  auto log = log_text();
  EXPECT_EQ(log.find("lost its lease"), std::string::npos) << log;
  EXPECT_EQ(log.find("not recorded"), std::string::npos) << log;
}

// Invariant (#16.4): a row whose exec_time another program wrote as text (the origin bot's
// format) is never spun on: the daemon stays nearly idle while it exists, and the row ends
// failed with last_error naming the value.
TEST_F(ServeE2E, MalformedExecTimeDoesNotSpin) {
  pid_t pid = daemon({"--threads", "1", "--lease", "1s"});
  ASSERT_TRUE(serving());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  ASSERT_EQ(sqlite3_exec(db,
                         "INSERT INTO tasks (task_type, create_time, exec_time, updated_time) VALUES "
                         "('memo', 0, '2026-01-01 10:00:00', 0), ('memo', 0, '9999-12-31', 0)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  const double cpu0 = cpu_seconds(pid);
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(1500ms);  // a window to measure CPU in (the check is the CPU used)
  const double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double used = cpu_seconds(pid) - cpu0;
  EXPECT_LT(used, window / 2) << "the daemon used " << used << " s of CPU in " << window << " s";
  auto s = store();
  EXPECT_TRUE(taskpool::test::eventually(
      [&] {
        std::this_thread::sleep_for(5ms);
        return s->stats().failed == 2;
      },
      20s));
  auto rows = s->list({});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NE(rows[0].last_error.value_or("").find("2026-01-01 10:00:00"), std::string::npos);
  EXPECT_NE(rows[1].last_error.value_or("").find("9999-12-31"), std::string::npos);
  stop_all({pid});
}

// Invariant (#16.8): two --threads 1 daemons share six 1-second tasks: each runs some, and two
// run at once at some point (one daemon hoarding all six would run them one after another).
TEST_F(ServeE2E, TwoDaemonsShareTheWork) {
  pid_t a = daemon({"--threads", "1"}, {{"TAG", "A"}});
  ASSERT_TRUE(serving());
  pid_t b = daemon({"--threads", "1"}, {{"TAG", "B"}});
  ASSERT_TRUE(serving());
  std::string batch;
  std::string script = marked("marks", "sleep 1");
  for (int i = 0; i < 6; ++i) {
    nlohmann::json rec = {{"task_type", "exec"}, {"payload", {{"argv", {"sh", "-c", script}}}}};
    batch += rec.dump() + "\n";
  }
  ASSERT_EQ(cli({"add", "--json", "-"}, batch).rc, 0);
  auto s = store();
  ASSERT_TRUE(taskpool::test::eventually(
      [&] {
        std::this_thread::sleep_for(5ms);
        return s->stats().done == 6;
      },
      60s));
  stop_all({a, b});
  std::set<std::string> tags;
  int running = 0, most = 0;
  for (auto& l : lines_of("marks")) {
    std::istringstream in(l);
    std::string what, id, pid, tag;
    in >> what >> id >> pid >> tag;
    if (what == "start") {
      tags.insert(tag);
      most = std::max(most, ++running);
    } else {
      --running;
    }
  }
  EXPECT_EQ(tags, (std::set<std::string>{"A", "B"}));
  EXPECT_EQ(most, 2);
}

// Invariant (stress): two daemons, and the command racing them with cancel, retry, upsert and
// extend. Checked: no two runs of one task ever overlap, no repeating slot runs twice, and after
// SIGTERM of both daemons nothing is left running.
TEST_F(ServeE2E, TwoDaemonStress) {
  std::vector<pid_t> daemons;
  for (const char* tag : {"A", "B"}) {
    daemons.push_back(daemon({"--threads", "2", "--lease", "2s", "--grace", "10s"}, {{"TAG", tag}}));
    ASSERT_TRUE(serving());
  }
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(add_exec(marked("marks", "sleep 0.$((3 + RANDOM % 6))"), {"--max-attempts", "3"}));
  std::string slots = (dir_ / "slots").string();
  for (int i = 0; i < 2; ++i)
    ids.push_back(add_exec(marked("marks", "echo $TASKPOOL_TASK_ID $TASKPOOL_EXEC_TIME >> " + slots), {"--every", "300ms"}));
  std::mt19937 rng(7);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(taskpool::test::scaled(3000));
  int ops = 0;
  while (std::chrono::steady_clock::now() < until) {
    std::string id = std::to_string(ids[rng() % ids.size()]);
    switch (rng() % 4) {
      case 0:  // the pattern that ran a task two or three times at once
        cli({"cancel", id});
        cli({"retry", id});
        break;
      case 1: cli({"retry", id}); break;
      case 2: cli({"extend", id, "--by", "200ms"}); break;
      case 3: {
        nlohmann::json payload = {{"argv", {"sh", "-c", marked("marks", "sleep 0.1; echo v" + std::to_string(ops))}}};
        cli({"add", "--type", "exec", "--unique-key", "k" + std::to_string(rng() % 2), "--payload", payload.dump()});
        break;
      }
    }
    ++ops;
  }
  stop_all(daemons);
  EXPECT_EQ(store()->stats().running, 0);
  expect_no_overlap("marks");
  std::set<std::string> seen;
  for (auto& l : lines_of("slots")) EXPECT_TRUE(seen.insert(l).second) << "slot ran twice: " << l;
  EXPECT_GT(lines_of("marks").size(), 0u);
}

}  // namespace
