// tests/cli_test.cpp — end-to-end tests driving the real `taskpool` binary, including the crash
// test that SIGKILLs the daemon at random moments while tasks run.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/cli_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/sqlite_store.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace {

using taskpool::test::CliTest;

// Invariant: the management commands round-trip through the database.
TEST_F(CliTest, ManageTasks) {
  auto a = cli({"add", "--type", "memo", "--creator", "123", "--group", "456", "--payload", R"({"text":"hi"})", "--in", "1h",
                "--level", "7"});
  ASSERT_EQ(a.rc, 0) << a.err;
  std::string id = a.out.substr(0, a.out.find('\n'));
  auto show = nlohmann::json::parse(cli({"show", id}).out);
  EXPECT_EQ(show["task_level"], 7);
  EXPECT_EQ(show["payload"]["text"], "hi");
  EXPECT_EQ(cli({"extend", id, "--by", "60s"}).rc, 0);
  EXPECT_EQ(cli({"extend", id, "--to", "2030-01-01 00:00:00"}).rc, 0);
  EXPECT_EQ(cli({"list", "--status", "waiting"}).out.find(id + " "), 0u);
  EXPECT_EQ(cli({"cancel", id}).rc, 0);
  EXPECT_NE(cli({"cancel", id}).rc, 0);
  EXPECT_EQ(cli({"retry", id}).rc, 0);
  auto stats = nlohmann::json::parse(cli({"stats", "--json"}).out);
  EXPECT_EQ(stats["waiting"], 1);
  auto reps = cli({"reports", "--ack"});
  EXPECT_NE(reps.out.find("\"status\":\"cancelled\""), std::string::npos);
  EXPECT_EQ(cli({"reports"}).out, "");
  EXPECT_EQ(cli({"prune", "--older-than", "0s"}).rc, 0);
  // --unique: add-or-update by creator+group+type (the origin plugin's upsert).
  auto u1 = cli({"add", "--type", "img_search_cycle", "--creator", "1", "--group", "2", "--unique", "--in", "60s"});
  auto u2 = cli({"add", "--type", "img_search_cycle", "--creator", "1", "--group", "2", "--unique", "--in", "120s"});
  EXPECT_EQ(u1.out, u2.out);
}

// Invariant: the origin's own records are accepted as they are (comments, "" ids, 0/-1 report
// targets, "YYYY-MM-DD HH:MM:SS" times, task_type "cycle").
TEST_F(CliTest, OriginRecordsAccepted) {
  const std::string record = R"({
    "creator_id": 123,
    "group_id": 123,
    "task_type": "cycle",
    "by_plugin": "",
    "create_time": "2021-11-26 10:13:14",
    "task_status": "waiting",
    "task_level": 5,
    "exec_task": "",
    "exec_time": "2021-11-26 10:13:14",
    // 报告人及群组未定义则默认报告creator
    "report_user_id": 0,
    "report_group_id": -1
})";
  auto r = cli({"add", "--json", record});
  ASSERT_EQ(r.rc, 0) << r.err;
  auto r2 = cli({"add", "--json", "-"}, "// inserted by the bot\n{\"creator_id\": 1, \"group_id\": \"\", \"task_type\": \"memo\", \"exec_time\": 1637892794}\n");
  ASSERT_EQ(r2.rc, 0) << r2.err;
  auto s = store();
  auto t = s->get(std::stoll(r.out));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->creator_id, "123");
  EXPECT_EQ(t->report_user_id, "");   // 0 means: report to the creator
  EXPECT_EQ(t->report_group_id, "");  // -1 means: report to the group
  EXPECT_EQ(t->handler(), "cycle");   // empty exec_task: the type names the handler
  EXPECT_FALSE(t->repeat_every.has_value());  // "cycle" without an interval runs once
  auto t2 = s->get(std::stoll(r2.out));
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(t2->exec_time.time_since_epoch()).count(), 1637892794);
}

// Invariant: bad input gets a one-line error naming the problem, a non-zero exit, and nothing
// is stored.
TEST_F(CliTest, BadInputRejectedAndNothingStored) {
  ASSERT_EQ(cli({"add", "--type", "ok"}).rc, 0);
  struct Case {
    std::vector<std::string> args;
    std::string input, needle;
  };
  std::vector<Case> cases = {
      {{"add", "--json", "{\"task_type\": \"x\",}"}, "", "malformed"},
      {{"add", "--json", "{\"task_type\": \"x\", \"colour\": 1}"}, "", "unknown field 'colour'"},
      {{"add", "--type", "x", "--at", "2021-11-31x"}, "", "bad time"},
      {{"add", "--type", "x", "--level", "12"}, "", "task_level 12"},
      {{"add", "--json", "{\"task_type\": \"x\", \"task_status\": \"sleeping\"}"}, "", "unknown task_status"},
      {{"list", "--status", "sleeping"}, "", "unknown status"},
      {{"add", "--json", "-"}, "{\"task_type\":\"a\"}\n{\"task_type\":\"b\",\"task_level\":-1}\n", "line 2"},
      {{"add", "--type", "x", "--every", "soon"}, "", "bad duration"},
      {{"add", "--type", "x", "--payload", "{oops"}, "", "payload"},
  };
  for (auto& c : cases) {
    auto r = cli(c.args, c.input);
    EXPECT_NE(r.rc, 0) << c.args[1];
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "one line: " << r.err;
  }
  EXPECT_EQ(store()->stats().waiting, 1);
  // Not our database; a locked database.
  std::string foreign = (dir_ / "foreign.db").string();
  sqlite3* db = nullptr;
  sqlite3_open(foreign.c_str(), &db);
  sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  auto f = cli({"list", "--db", foreign});
  EXPECT_NE(f.rc, 0);
  EXPECT_NE(f.err.find("not a taskpool database"), std::string::npos) << f.err;
  sqlite3_open(db_.c_str(), &db);
  sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr);
  setenv("TASKPOOL_BUSY_TIMEOUT", "100ms", 1);
  auto l = cli({"add", "--type", "x"});
  unsetenv("TASKPOOL_BUSY_TIMEOUT");
  sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_NE(l.rc, 0);
  EXPECT_NE(l.err.find("locked"), std::string::npos) << l.err;
  EXPECT_EQ(store()->stats().waiting, 1);
}

// Invariant: `serve` runs exec tasks added by another process and exits 0 on SIGTERM.
TEST_F(CliTest, ServeRunsTasksAndStopsOnSigterm) {
  pid_t pid = serve();
  ASSERT_TRUE(serving());
  auto r = cli({"add", "--type", "exec", "--payload", R"({"argv": ["sh", "-c", "echo ran $TASKPOOL_TASK_ID"]})"});
  ASSERT_EQ(r.rc, 0);
  auto s = store();
  auto id = std::stoll(r.out);
  EXPECT_TRUE(eventually([&]() -> bool { return s->get(id)->status == taskpool::TaskStatus::done; }, std::chrono::seconds(30)));
  EXPECT_NE(s->get(id)->result->find("ran " + std::to_string(id)), std::string::npos);
  // Resize at run time (SIGTTIN/SIGTTOU), pause/resume (SIGUSR1/SIGUSR2): each is acknowledged
  // in the log, and the daemon keeps working.
  auto log_has = [&](const std::string& needle) {
    return eventually([&] {
      std::ifstream log(dir_ / "serve.log");
      std::stringstream ss;
      ss << log.rdbuf();
      return ss.str().find(needle) != std::string::npos;
    });
  };
  // (Standard signals do not queue: wait for each acknowledgement before the next signal.)
  kill(pid, SIGTTIN);
  EXPECT_TRUE(log_has("threads: 3"));
  kill(pid, SIGTTOU);
  EXPECT_TRUE(log_has("threads: 2"));
  kill(pid, SIGTTOU);
  EXPECT_TRUE(log_has("threads: 1"));
  kill(pid, SIGUSR1);
  EXPECT_TRUE(log_has("paused"));
  kill(pid, SIGUSR2);
  EXPECT_TRUE(log_has("resumed"));
  auto r2 = cli({"add", "--type", "exec", "--payload", R"({"argv": ["true"]})"});
  auto id2 = std::stoll(r2.out);
  EXPECT_TRUE(eventually([&]() -> bool { return s->get(id2)->status == taskpool::TaskStatus::done; }, std::chrono::seconds(30)));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 0);
}

// Invariant (crash safety): SIGKILL at random moments while tasks run loses no task, records no
// repeating slot twice, and leaves the database intact.
TEST_F(CliTest, CrashSafetyUnderSigkill) {
  std::string batch;
  const int one_shots = 40;
  for (int i = 0; i < one_shots; ++i)
    batch += R"({"task_type": "exec", "max_attempts": 100, "payload": {"argv": ["sh", "-c", "sleep 0.0$((RANDOM % 5)); echo one"]}})"
             "\n";
  for (int i = 0; i < 2; ++i)
    batch += R"({"task_type": "exec", "repeat_every": "150ms", "max_attempts": 100, "payload": {"argv": ["sh", "-c", "echo slot-$TASKPOOL_EXEC_TIME"]}})"
             "\n";
  ASSERT_EQ(cli({"add", "--json", "-"}, batch).rc, 0);
  std::mt19937 rng(42);
  const int rounds = static_cast<int>(taskpool::test::scaled(12));
  for (int round = 0; round < rounds; ++round) {
    pid_t pid = serve({"--lease", "500ms"});
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));  // a random moment
    kill(pid, SIGKILL);
    wait_exit(pid);
  }
  pid_t pid = serve({"--lease", "500ms"});
  ASSERT_TRUE(serving());
  auto s = store();
  ASSERT_TRUE(eventually(
      [&] {
        auto st = s->stats();
        return st.waiting == 2 && st.running == 0 && st.failed == 0 && st.done == one_shots;
      },
      std::chrono::seconds(120)));
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 0);
  // Every one-shot task ran (done); each repeating slot was recorded at most once.
  std::map<std::int64_t, std::set<std::string>> slots;
  for (auto& r : s->reports(false, 100000)) {
    if (!r.result || r.result->find("slot-") == std::string::npos) continue;
    auto pos = r.result->find("slot-");
    std::string slot = r.result->substr(pos, r.result->find('\\', pos) - pos);
    EXPECT_TRUE(slots[r.task_id].insert(slot).second) << "slot recorded twice: " << slot;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

}  // namespace
