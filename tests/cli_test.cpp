// tests/cli_test.cpp — end-to-end tests driving the real `taskpool` binary, including the crash
// test that SIGKILLs the daemon at random moments while tasks run.
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/cli_fixture.hpp"
#include "common/pg_util.hpp"
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
  EXPECT_NE(cli({"list", "--status", "waiting"}).out.find("\n" + id + " "), std::string::npos);
  EXPECT_EQ(cli({"cancel", id}).rc, 0);
  EXPECT_EQ(cli({"cancel", id}).rc, 4);  // exists, but its state does not allow it
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
    batch += R"({"task_type": "exec", "repeat_every": "150ms", "report_on": "always", "max_attempts": 100, "payload": {"argv": ["sh", "-c", "echo slot-$TASKPOOL_EXEC_TIME"]}})"
             "\n";
  ASSERT_EQ(cli({"add", "--json", "-"}, batch).rc, 0);
  std::mt19937 rng(42);
  const int rounds = static_cast<int>(taskpool::test::scaled(12));
  for (int round = 0; round < rounds; ++round) {
    pid_t pid = serve({"--lease", "1s"});  // the floor (kMinLease)
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 400));  // a random moment
    kill(pid, SIGKILL);
    wait_exit(pid);
  }
  pid_t pid = serve({"--lease", "1s"});  // the floor (kMinLease)
  ASSERT_TRUE(serving(pid));  // a daemon killed above may have died before its first line
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
  EXPECT_FALSE(slots.empty()) << "no repeating run was reported: the check above saw nothing";
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "ok");
  sqlite3_finalize(st);
  sqlite3_close(db);
}

// Runs SQL on the test's database directly, as another program would.
void run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << "\n" << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// Whether s starts with `shape`, where '9' in shape stands for any digit.
bool shaped(const std::string& s, std::string_view shape) {
  if (s.size() < shape.size()) return false;
  for (std::size_t i = 0; i < shape.size(); ++i)
    if (shape[i] == '9' ? !std::isdigit(static_cast<unsigned char>(s[i])) : s[i] != shape[i]) return false;
  return true;
}

// #11.1 Invariant: text that is not UTF-8 is refused at every entry (options, records), naming
// the field, and nothing is stored; rows that another program wrote with such bytes never make
// show, list --json, reports or reports --ack fail (the outbox can always be read and drained).
TEST_F(CliTest, InvalidUtf8RefusedAndNeverBlocksOutput) {
  ASSERT_EQ(cli({"add", "--type", "memo"}).rc, 0);
  struct Case {
    std::vector<std::string> args;
    std::string input, field;
  };
  std::vector<Case> cases = {
      {{"add", "--type", "exec", "--creator", "al\xff" "ice", "--payload", R"({"argv": ["true"]})"}, "", "creator_id"},
      {{"add", "--type", "memo", "--group", "g\xc0\xaf"}, "", "group_id"},  // overlong '/'
      {{"add", "--type", "memo\xed\xa0\x80"}, "", "task_type"},              // a surrogate
      {{"add", "--type", "memo", "--unique-key", "k\xf4\x90\x80\x80"}, "", "unique_key"},  // > U+10FFFF
      {{"add", "--type", "memo", "--payload", "{\"text\": \"caf\xe9\"}"}, "", "payload"},  // Latin-1
      {{"add", "--json", "-"}, "{\"task_type\": \"memo\", \"creator_id\": \"al\xff" "ice\"}\n", "line 1"},
  };
  for (auto& c : cases) {
    auto r = cli(c.args, c.input);
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
  EXPECT_EQ(store()->stats().waiting, 1);

  // Rows written by another program: bad bytes in a text column, in a payload (SQLite's
  // json_valid does not check UTF-8), and in a report's result (a program's raw output).
  run_sql(db_, "INSERT INTO tasks (creator_id, task_type, payload, create_time, exec_time, updated_time) VALUES ("
               "CAST(X'616CFF696365' AS TEXT), 'memo', '{\"a\": \"' || CAST(X'FF' AS TEXT) || '\"}', 0, 0, 0);"
               "INSERT INTO reports (task_id, report_user_id, report_group_id, status, result, created_time) VALUES ("
               "2, CAST(X'FE' AS TEXT), '', 'done', 'out: ' || CAST(X'C3' AS TEXT), 0);");
  auto show = cli({"show", "2"});
  ASSERT_EQ(show.rc, 0) << show.err;
  auto j = nlohmann::json::parse(show.out);  // valid JSON (and valid UTF-8) whatever was stored
  EXPECT_EQ(j["creator_id"], "al\xef\xbf\xbd" "ice");  // the bad byte replaced by U+FFFD
  ASSERT_TRUE(j["payload"].is_string()) << show.out;   // not JSON: shown as its text, never <discarded>
  EXPECT_NE(j["payload"].get<std::string>().find("\"a\""), std::string::npos);
  auto list = cli({"list", "--json"});
  EXPECT_EQ(list.rc, 0) << list.err;
  EXPECT_EQ(lines(list.out), 2);
  auto reps = cli({"reports"});
  EXPECT_EQ(reps.rc, 0) << reps.err;
  EXPECT_EQ(lines(reps.out), 1);
  auto ack = cli({"reports", "--ack"});
  EXPECT_EQ(ack.rc, 0) << ack.err;
  EXPECT_EQ(cli({"reports"}).out, "");
  EXPECT_EQ(cli({"prune", "--older-than", "0s"}).rc, 0);
}

// #11.7 Invariant: the origin's records are accepted as written: `//`-commented objects one
// after another, objects with or without newlines between them, arrays, JSON lines.
TEST_F(CliTest, OriginRecordStreamAccepted) {
  // Verbatim from the origin note (000_8a49815890aef784.txt, "插入数据").
  const std::string origin = R"(// 插入数据 1
{
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
    "report_user_id": "",
    "report_group_id": ""
}

// 插入数据 2
{
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
}
)";
  auto r = cli({"add", "--json", "-"}, origin);
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(lines(r.out), 2);
  auto r2 = cli({"add", "--json", R"({"task_type": "a"}{"task_type": "b"} [{"task_type": "c"}, {"task_type": "d"}])"});
  ASSERT_EQ(r2.rc, 0) << r2.err;
  EXPECT_EQ(lines(r2.out), 4);
  auto r3 = cli({"add", "--json", "-"}, "{\"task_type\": \"e\"}\n/* block */ {\"task_type\": \"f\"}\n");
  ASSERT_EQ(r3.rc, 0) << r3.err;
  EXPECT_EQ(lines(r3.out), 2);
  EXPECT_EQ(store()->stats().waiting, 8);
}

// #11.7 Invariant: a bad record stream is refused whole (nothing stored) with the real line and
// column of the problem: a syntax error where it is, a bad record where the record starts.
TEST_F(CliTest, RecordStreamErrorsCarryLineAndColumn) {
  auto syntax = cli({"add", "--json", "-"}, "// first\n{\"task_type\": \"a\"}\n{\"task_type\": \"b\",\n \"task_level\": 5,,\n}\n");
  EXPECT_EQ(syntax.rc, 2);
  EXPECT_NE(syntax.err.find("line 4, column 18"), std::string::npos) << syntax.err;
  EXPECT_EQ(lines(syntax.err), 1) << syntax.err;
  auto field = cli({"add", "--json", "-"}, "{\"task_type\": \"a\"}\n\n  {\n  \"task_type\": \"b\",\n  \"task_level\": 12\n}\n");
  EXPECT_EQ(field.rc, 2);
  EXPECT_NE(field.err.find("line 3, column 3"), std::string::npos) << field.err;
  EXPECT_NE(field.err.find("task_level 12"), std::string::npos) << field.err;
  auto empty = cli({"add", "--json", "-"}, "// nothing here\n");
  EXPECT_EQ(empty.rc, 2);
  EXPECT_NE(empty.err.find("no task records"), std::string::npos) << empty.err;
  EXPECT_FALSE(std::filesystem::exists(db_));  // refused before the database was even created
}

// #11.8 and #16.5 Invariant: a time that does not exist or lies outside the supported range
// (1970 .. 2199), and a duration beyond the range, are refused with exit 2 naming the option
// or field, at every entry; nothing is stored. (Before: moved to another day, or wrapped
// around past 2262 and ran at once.)
TEST_F(CliTest, ImpossibleAndOutOfRangeTimesRefused) {
  ASSERT_EQ(cli({"add", "--type", "memo", "--at", "2024-02-29 12:00:00"}).rc, 0);  // a leap day
  ASSERT_EQ(cli({"add", "--type", "memo", "--at", "2199-12-31 23:59:59Z"}).rc, 0);
  struct Case {
    std::vector<std::string> args;
    std::string input, field;
  };
  std::vector<Case> cases = {
      {{"add", "--type", "x", "--at", "2021-02-30 10:00:00"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2021-02-29 10:00:00"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2021-04-31 10:00:00"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2021-01-01 24:00:00"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2021-01-01 23:59:60Z"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2021-01-01 10:00:00+14:30"}, "", "--at"},
      {{"add", "--type", "x", "--at", "2300-01-01 00:00:00Z"}, "", "--at"},
      {{"add", "--type", "x", "--at", "99999999999"}, "", "--at"},
      {{"add", "--type", "x", "--in", "110000d"}, "", "--in"},
      {{"add", "--type", "x", "--every", "110000d"}, "", "--every"},
      {{"add", "--json", R"({"task_type": "x", "exec_time": "2021-02-30 10:00:00"})"}, "", "exec_time"},
      {{"add", "--json", R"({"task_type": "x", "exec_time": 99999999999})"}, "", "exec_time"},
      {{"add", "--json", R"({"task_type": "x", "exec_time": 18446744073709551615})"}, "", "exec_time"},
      {{"add", "--json", R"({"task_type": "x", "repeat_every": "110000d"})"}, "", "repeat_every"},
      {{"add", "--json", R"({"task_type": "x", "repeat_every": 9999999999999})"}, "", "repeat_every"},
      {{"extend", "1", "--to", "2021-02-30 10:00:00"}, "", "--to"},
      {{"extend", "1", "--by", "110000d"}, "", "--by"},
  };
  for (auto& c : cases) {
    auto r = cli(c.args, c.input);
    EXPECT_EQ(r.rc, 2) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.field), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
  auto s = store();
  EXPECT_EQ(s->stats().waiting, 2);
  auto t = s->get(1);
  ASSERT_TRUE(t);
  std::time_t secs = std::chrono::system_clock::to_time_t(t->exec_time);
  std::tm tm{};
  localtime_r(&secs, &tm);
  EXPECT_EQ(tm.tm_mon, 1);  // February 29th stayed in February
  EXPECT_EQ(tm.tm_mday, 29);
}

// #11.8 Invariant: a local time skipped by a daylight-saving change is refused, not moved.
TEST_F(CliTest, LocalTimeInDstGapRefused) {
  setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);  // the child commands inherit it
  auto gap = cli({"add", "--type", "x", "--at", "2021-03-28 02:30:00"});
  auto fine = cli({"add", "--type", "x", "--at", "2021-03-28 03:30:00"});
  unsetenv("TZ");
  EXPECT_EQ(gap.rc, 2) << gap.err;
  EXPECT_NE(gap.err.find("--at"), std::string::npos) << gap.err;
  EXPECT_EQ(fine.rc, 0) << fine.err;
}

// #11.10 Invariant: contradictory options and a payload the built-in exec handler cannot run
// are refused at add (exit 2, nothing stored), not at run time.
TEST_F(CliTest, ContradictionsAndBadExecPayloadsRefusedAtAdd) {
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  std::vector<Case> cases = {
      {{"add", "--type", "x", "--unique", "--unique-key", "k"}, "--unique"},
      {{"add", "--type", "exec", "--payload", R"({"argv": ["true"], "timeout": "bogus"})"}, "timeout"},
      {{"add", "--type", "exec", "--payload", "[1]"}, "argv"},
      {{"add", "--type", "exec"}, "argv"},  // the default payload {} has no argv
      {{"add", "--type", "job", "--handler", "exec", "--payload", R"({"argv": "true"})"}, "argv"},
      {{"add", "--json", R"({"task_type": "exec", "payload": {"argv": ["true"], "timeout": "bogus"}})"}, "timeout"},
      {{"add", "--unique", "--json", R"({"task_type": "x", "unique_key": "k"})"}, "unique"},
  };
  for (auto& c : cases) {
    auto r = cli(c.args);
    EXPECT_EQ(r.rc, 2) << c.args.back() << ": " << r.err;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
    EXPECT_EQ(lines(r.err), 1) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(db_));
  // An exec payload that is fine; another handler's payload is not the exec handler's business.
  EXPECT_EQ(cli({"add", "--type", "exec", "--payload", R"({"argv": ["true"], "timeout": "5s"})"}).rc, 0);
  EXPECT_EQ(cli({"add", "--type", "memo", "--payload", "[1]"}).rc, 0);
}

// #11.10 Invariant: `serve --lease` below the dispatcher's floor is a usage error (exit 2), not
// a daemon running one task several times at once. Bounded: a daemon that serves is killed.
TEST_F(CliTest, ServeRefusesLeaseBelowFloor) {
  pid_t pid = serve({"--lease", "1ms"});
  EXPECT_EQ(wait_exit_within(pid, std::chrono::seconds(30)), 2);
}

// #11.11 Invariant: only add and serve create a database; every other command on a missing
// file says "no database at PATH", exits 3 and creates nothing.
TEST_F(CliTest, ReadCommandsCreateNoDatabase) {
  std::string typo = (dir_ / "typo.db").string();
  std::vector<std::vector<std::string>> cmds = {{"stats"},  {"list"},     {"show", "1"},          {"reports"},
                                                {"reports", "--ack"},     {"cancel", "1"},        {"retry", "1"},
                                                {"extend", "1", "--by", "1s"}, {"prune"}};
  for (auto args : cmds) {
    args.insert(args.end(), {"--db", typo});
    auto r = cli(args);
    EXPECT_EQ(r.rc, 3) << args[0] << ": " << r.err;
    EXPECT_NE(r.err.find("no database at " + typo), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(typo)) << args[0];
  }
  EXPECT_EQ(cli({"add", "--type", "memo", "--db", typo}).rc, 0);
  EXPECT_TRUE(std::filesystem::exists(typo));
}

// #11.11 Invariant: a database the user may only read (file and directory not writable) can
// still be listed, shown and counted, and its reports printed. As root, whom permissions do not
// stop, the commands run as nobody.
TEST_F(CliTest, ReadOnlyDatabaseCanBeRead) {
  ASSERT_EQ(cli({"add", "--type", "memo", "--creator", "ro"}).rc, 0);
  ASSERT_EQ(cli({"cancel", "1"}).rc, 0);  // writes a report
  ASSERT_EQ(chmod(db_.c_str(), 0444), 0);
  ASSERT_EQ(chmod(dir_.c_str(), 0555), 0);
  std::string as = geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  auto list = cli_as(as, {"list"});
  auto show = cli_as(as, {"show", "1"});
  auto stats = cli_as(as, {"stats", "--json"});
  auto reps = cli_as(as, {"reports"});
  auto write = cli_as(as, {"add", "--type", "memo"});
  chmod(dir_.c_str(), 0755);
  chmod(db_.c_str(), 0644);
  EXPECT_EQ(list.rc, 0) << list.err;
  EXPECT_NE(list.out.find("ro"), std::string::npos);
  EXPECT_EQ(show.rc, 0) << show.err;
  EXPECT_EQ(stats.rc, 0) << stats.err;
  EXPECT_EQ(reps.rc, 0) << reps.err;
  EXPECT_EQ(lines(reps.out), 1);
  EXPECT_EQ(write.rc, 1) << write.err;  // writing is a failure of the system, one line
  EXPECT_EQ(lines(write.err), 1) << write.err;
}

// Friction (#11) Invariant: one exit-code scheme for every subcommand: 0 ok, 1 database or
// system failure, 2 usage or bad input, 3 not found, 4 the task's state does not allow it.
// Plus --version, --db before the subcommand, an unknown subcommand named, list's header,
// stats' next due time, and --report mapped to the task's report_on.
TEST_F(CliTest, ExitCodesAndFriction) {
  auto a = cli({"add", "--type", "memo", "--at", "2030-01-02 03:04:05", "--report", "failure"});
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(cli({"show", "999"}).rc, 3);
  EXPECT_EQ(cli({"cancel", "999"}).rc, 3);
  EXPECT_EQ(cli({"retry", "999"}).rc, 3);
  EXPECT_EQ(cli({"extend", "999", "--by", "1s"}).rc, 3);
  EXPECT_EQ(cli({"retry", "1"}).rc, 4);  // waiting: nothing to retry
  EXPECT_EQ(cli({"show", "one"}).rc, 2);
  EXPECT_EQ(cli({"add", "--type", "x", "--report", "sometimes"}).rc, 2);
  auto unknown = cli({"frobnicate"});
  EXPECT_EQ(unknown.rc, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown.err;
  auto version = cli({"--version"});
  EXPECT_EQ(version.rc, 0) << version.err;
  int major = -1, minor = -1, patch = -1;
  EXPECT_EQ(std::sscanf(version.out.c_str(), "taskpool %d.%d.%d\n", &major, &minor, &patch), 3) << version.out;
  EXPECT_EQ(lines(version.out), 1) << version.out;
  auto before = cli({"--db", db_, "list"});
  EXPECT_EQ(before.rc, 0) << before.err;
  EXPECT_EQ(before.out.rfind("ID ", 0), 0u) << before.out;  // a header line first
  EXPECT_EQ(lines(before.out), 2);
  EXPECT_EQ(lines(cli({"list", "--json"}).out), 1);  // no header in JSON lines
  auto stats = cli({"stats"});
  EXPECT_NE(stats.out.find("next due 2030-01-02 03:04:05"), std::string::npos) << stats.out;
  auto show = nlohmann::json::parse(cli({"show", "1"}).out);
  EXPECT_EQ(show["report_on"], "failure");
  auto help = cli({"add", "--help"});
  EXPECT_EQ(help.rc, 0);
  EXPECT_NE(help.out.find("--report"), std::string::npos);
}

// #16.9 Invariant: the daemon outlives its log reader (SIGPIPE ignored, a failed log write is
// not fatal): `taskpool serve | head -n 1` keeps running tasks and stops cleanly on SIGTERM.
// Also: log lines start with an ISO 8601 UTC timestamp.
TEST_F(CliTest, ServeSurvivesClosedLogReader) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    int log = open((dir_ / "serve.err").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fds[1], 1);
    dup2(log, 2);
    close(fds[0]);
    execl(TASKPOOL_CLI_PATH, TASKPOOL_CLI_PATH, "serve", "--db", db_.c_str(), "--poll", "50ms", "--threads", "2",
          static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string first;
  char c = 0;
  pollfd pfd{fds[0], POLLIN, 0};
  while (first.find('\n') == std::string::npos && poll(&pfd, 1, 30000) == 1 && read(fds[0], &c, 1) == 1) first += c;
  close(fds[0]);  // the reader goes away, as `head -n 1` does
  EXPECT_TRUE(shaped(first, "9999-99-99T99:99:99.999Z taskpool: ")) << first;
  auto s = store();
  int status = 0;
  bool died = false;
  auto dead = [&] { return died || (died = waitpid(pid, &status, WNOHANG) == pid); };
  for (int i = 0; i < 2 && !died; ++i) {  // each run writes a log line into the closed pipe
    auto r = cli({"add", "--type", "exec", "--payload", R"({"argv": ["true"]})"});
    ASSERT_EQ(r.rc, 0) << r.err;
    auto id = std::stoll(r.out);
    EXPECT_TRUE(eventually([&] { return dead() || s->get(id)->status == taskpool::TaskStatus::done; }, std::chrono::seconds(30)));
  }
  ASSERT_FALSE(dead()) << "the daemon died: status " << status;
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit_within(pid, std::chrono::seconds(60)), 0);
}

// Runs `taskpool list` with stdout to /dev/null; returns the peak RSS of that process (KiB), or
// -1 when it failed or did not end within a minute.
long list_peak_rss(const std::string& db, const std::string& limit) {
  // Under AddressSanitizer freed memory is held in a quarantine that grows with the bytes
  // allocated, not the bytes live: off for this process, so RSS measures what list keeps.
  std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
  asan += (asan.empty() ? "" : ":") + std::string("quarantine_size_mb=0");
  pid_t pid = fork();
  if (pid == 0) {
    setenv("ASAN_OPTIONS", asan.c_str(), 1);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execl(TASKPOOL_CLI_PATH, TASKPOOL_CLI_PATH, "list", "--json", "--limit", limit.c_str(), "--db", db.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  rusage ru{};
  bool ended = eventually([&] { return wait4(pid, &status, WNOHANG, &ru) == pid; }, std::chrono::seconds(60));
  if (!ended) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ru.ru_maxrss : -1;
}

// #16.11 Invariant: list streams rows: its peak memory does not grow with the number of rows
// printed (200,000 rows: before, every row was loaded first, about 100 MB more).
TEST_F(CliTest, ListStreamsRowsInFlatMemory) {
  ASSERT_EQ(cli({"add", "--type", "memo", "--creator", "a-creator-of-some-length", "--payload",
                 R"({"text": "a payload of some length, as a reminder's text would be"})"})
                .rc,
            0);
  // Copies of row 1, every column but the id, inserted in one transaction.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(db_.c_str(), &db), SQLITE_OK);
  std::string cols;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('tasks') WHERE name <> 'id'", -1, &st, nullptr);
  while (sqlite3_step(st) == SQLITE_ROW) cols += (cols.empty() ? "" : ", ") + std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)));
  sqlite3_finalize(st);
  sqlite3_close(db);
  run_sql(db_, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000) INSERT INTO tasks (" +
                   cols + ") SELECT " + cols + " FROM tasks, n WHERE tasks.id = 1");
  long few = list_peak_rss(db_, "1000");
  long all = list_peak_rss(db_, "1000000");
  ASSERT_GT(few, 0);
  ASSERT_GT(all, 0);
  EXPECT_LT(all, few + 16 * 1024) << "peak RSS " << few << " KiB for 1000 rows, " << all << " KiB for 200001 rows";
}

// #14 Invariant: cron-next prints the next N instants strictly after --from in the schedule's
// zone (a DST gap collapses into its first instant); a bad expression or zone is one line naming
// the field and the text, exit 2.
TEST_F(CliTest, CronNext) {
  auto gap = cli({"cron-next", "*/15 2 * * *", "--tz", "America/New_York", "--from", "2026-03-08T01:50:00-05:00",
                  "--count", "3"});
  EXPECT_EQ(gap.rc, 0) << gap.err;
  EXPECT_EQ(gap.out, "2026-03-08T03:00:00-04:00\n2026-03-09T02:00:00-04:00\n2026-03-09T02:15:00-04:00\n");
  auto weekly = cli({"cron-next", "@weekly", "--from", "1798156800"});  // 2026-12-25T00:00:00Z, epoch form
  EXPECT_EQ(weekly.rc, 0) << weekly.err;
  EXPECT_EQ(std::count(weekly.out.begin(), weekly.out.end(), '\n'), 5);
  EXPECT_EQ(weekly.out.substr(0, 26), "2026-12-27T00:00:00+00:00\n");
  auto now = cli({"cron-next", "* * * * * *", "--count", "1"});
  EXPECT_EQ(now.rc, 0) << now.err;
  EXPECT_EQ(now.out.size(), 26u) << now.out;
  auto never = cli({"cron-next", "0 0 30 2 *"});
  EXPECT_EQ(never.rc, 0) << never.err;
  EXPECT_EQ(never.out, "");
  struct Bad {
    std::vector<std::string> args;
    const char* want;
  };
  const std::vector<Bad> bad = {
      {{"cron-next", "0 24 * * *"}, "hour field: '24'"},
      {{"cron-next", "* * * * *", "--tz", "Mars/Olympus"}, "tz: unknown time zone 'Mars/Olympus'"},
      {{"cron-next", "* * * *"}, "expected 5 or 6 fields"},
      {{"cron-next", "* * * * *", "--from", "2026-02-30T00:00:00Z"}, "--from"},
      {{"cron-next", "* * * * *", "--count", "-1"}, "--count"},
  };
  for (const Bad& b : bad) {
    auto r = cli(b.args);
    EXPECT_EQ(r.rc, 2) << b.args[1];
    EXPECT_NE(r.err.find(b.want), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}

// #14 Invariant: cron and debounce tasks from the command: bad input is one line, exit 2, and
// nothing is stored (no database is even created); good input round-trips through show, list and
// next, which prints the next instants in the schedule's zone.
TEST_F(CliTest, CronAndDebounceFromTheCommand) {
  auto refused = [&](const std::vector<std::string>& args, const std::string& field) {
    auto r = cli(args);
    EXPECT_EQ(r.rc, 2) << r.err;
    EXPECT_NE(r.err.find(field), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  };
  refused({"add", "--type", "memo", "--cron", "61 * * * *"}, "cron");
  refused({"add", "--type", "memo", "--cron", "0 9 * * *", "--every", "1h"}, "repeat_every");
  refused({"add", "--type", "memo", "--tz", "UTC"}, "tz");
  refused({"add", "--type", "memo", "--cron", "0 9 * * *", "--tz", "No/Such_Zone"}, "No/Such_Zone");
  refused({"add", "--type", "memo", "--debounce", "1m"}, "unique_key");
  refused({"add", "--type", "memo", "--unique-key", "k", "--max-wait", "1m"}, "max_wait");
  refused({"add", "--type", "memo", "--unique-key", "k", "--debounce", "2m", "--max-wait", "1m"}, "max_wait");
  EXPECT_FALSE(std::filesystem::exists(db_));

  auto c = cli({"add", "--type", "memo", "--cron", "0 9 * * *"});
  ASSERT_EQ(c.rc, 0) << c.err;
  std::string id = c.out.substr(0, c.out.find('\n'));
  auto show = nlohmann::json::parse(cli({"show", id}).out);
  EXPECT_EQ(show["cron"], "0 9 * * *");
  EXPECT_TRUE(show["repeat_every"].is_null());
  EXPECT_NE(cli({"list"}).out.find("cron 0 9 * * *"), std::string::npos);
  auto next = cli({"next", id, "--count", "3"});
  ASSERT_EQ(next.rc, 0) << next.err;
  std::vector<std::string> lines;
  for (std::size_t at = 0, nl; (nl = next.out.find('\n', at)) != std::string::npos; at = nl + 1)
    lines.push_back(next.out.substr(at, nl - at));
  ASSERT_EQ(lines.size(), 3u) << next.out;
  for (auto& l : lines) EXPECT_EQ(l.substr(10), "T09:00:00+00:00") << l;
  EXPECT_LT(lines[0], lines[1]);
  EXPECT_LT(lines[1], lines[2]);

  auto every = cli({"add", "--type", "memo", "--every", "10m", "--at", "2030-01-01T00:00:00Z"});
  auto grid = cli({"next", every.out.substr(0, every.out.find('\n')), "--count", "2"});
  EXPECT_EQ(grid.out, "2030-01-01T00:00:00+00:00\n2030-01-01T00:10:00+00:00\n");
  auto once = cli({"add", "--type", "memo"});
  EXPECT_EQ(cli({"next", once.out.substr(0, once.out.find('\n'))}).rc, 4);

  auto d1 = cli({"add", "--type", "memo", "--unique-key", "img:1", "--debounce", "1m", "--max-wait", "10m"});
  auto d2 = cli({"add", "--type", "memo", "--unique-key", "img:1", "--debounce", "1m", "--max-wait", "10m"});
  ASSERT_EQ(d1.rc, 0) << d1.err;
  EXPECT_EQ(d1.out, d2.out);
  auto ds = nlohmann::json::parse(cli({"show", d1.out.substr(0, d1.out.find('\n'))}).out);
  EXPECT_EQ(ds["debounce"], "60000ms");
  EXPECT_EQ(ds["max_wait"], "600000ms");
  EXPECT_TRUE(ds["debounce_start"].is_string());
}

// #14 Invariant: serve --limit bounds the runs of a handler: exec tasks that each hold a lock
// directory while they run never find it taken under --limit exec=1, and all of them run; bad
// --limit / --fairness values exit 2.
TEST_F(CliTest, ServeLimitsAndFairness) {
  EXPECT_EQ(wait_exit_within(serve({"--limit", "exec=0"}), std::chrono::seconds(30)), 2);
  EXPECT_EQ(wait_exit_within(serve({"--limit", "exec"}), std::chrono::seconds(30)), 2);
  EXPECT_EQ(wait_exit_within(serve({"--fairness", "loudest"}), std::chrono::seconds(30)), 2);
  const std::string lock = (dir_ / "lock").string();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 6; ++i) {
    auto r = cli({"add", "--type", "exec", "--creator", "c" + std::to_string(i % 3), "--payload",
                  R"({"argv": ["sh", "-c", "mkdir )" + lock + R"( || exit 7; sleep 0.05; rmdir )" + lock + R"("]})"});
    ASSERT_EQ(r.rc, 0) << r.err;
    ids.push_back(std::stoll(r.out));
  }
  pid_t pid = serve({"--limit", "exec=1", "--fairness", "group"});
  auto s = store();
  for (auto id : ids)
    EXPECT_TRUE(eventually([&] { return s->get(id)->status != taskpool::TaskStatus::waiting &&
                                        s->get(id)->status != taskpool::TaskStatus::running; },
                           std::chrono::seconds(60)));
  for (auto id : ids) EXPECT_EQ(s->get(id)->status, taskpool::TaskStatus::done) << *s->get(id)->last_error;
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid), 0);
}

// #13.2 Invariant: `nodes` lists each live daemon once (pid, threads, host); a daemon that stops
// cleanly is gone at once, a killed one is left out once its heartbeat is older than --max-age
// (its row stays until a leader ages it out: `nodes` only reads).
TEST_F(CliTest, NodesListsLiveDaemonsAndHidesDeadOnes) {
  EXPECT_EQ(cli({"nodes"}).rc, 3);  // no database: nothing created
  std::set<long long> pids;
  for (int i = 0; i < 2; ++i) pids.insert(serve({"--heartbeat", "100ms"}));
  ASSERT_TRUE(serving());
  auto listed = [&](const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"nodes", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = cli(args);
    EXPECT_EQ(r.rc, 0) << r.err;
    std::set<long long> seen;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      auto j = nlohmann::json::parse(line);
      EXPECT_EQ(j["threads"], 2) << line;
      EXPECT_FALSE(j["host"].get<std::string>().empty()) << line;
      EXPECT_EQ(j["paused"], false) << line;
      EXPECT_TRUE(j.contains("heartbeat") && j.contains("in_flight") && j.contains("owner")) << line;
      seen.insert(j["pid"].get<long long>());
    }
    return seen;
  };
  EXPECT_EQ(listed(), pids);
  auto text = cli({"nodes"});
  EXPECT_EQ(text.rc, 0) << text.err;
  EXPECT_EQ(text.out.rfind("HOST", 0), 0u) << text.out;
  EXPECT_EQ(lines(text.out), 3) << text.out;
  auto stopped = *pids.begin(), killed = *pids.rbegin();
  kill(static_cast<pid_t>(stopped), SIGTERM);
  EXPECT_EQ(wait_exit(static_cast<pid_t>(stopped)), 0);
  EXPECT_EQ(listed(), std::set<long long>{killed});  // removed by its clean stop
  kill(static_cast<pid_t>(killed), SIGKILL);
  wait_exit(static_cast<pid_t>(killed));
  EXPECT_TRUE(eventually([&] { return listed({"--max-age", "300ms"}).empty(); }));
  EXPECT_EQ(listed({"--max-age", "1h"}), std::set<long long>{killed});  // hidden, not deleted: `nodes` only reads
  EXPECT_EQ(cli({"nodes", "--max-age", "0s"}).rc, 2);
}

// Invariant: every command works on a PostgreSQL database named by a postgresql:// --db (a fresh
// schema per test via ?schema=); read commands create nothing, and `serve` runs a task there.
TEST_F(CliTest, PostgresDatabaseByUri) {
  if (taskpool::test::pg_skipped()) GTEST_SKIP() << "TASKPOOL_TEST_PG=skip";
  const std::string base = taskpool::test::pg_base_uri();
  if (base.empty()) FAIL() << taskpool::test::kPgUnset;
  const std::string schema = taskpool::test::fresh_schema("cli");
  db_ = taskpool::test::with_schema(base, schema);
  auto missing = cli({"list"});
  EXPECT_NE(missing.rc, 0);
  EXPECT_NE(missing.err.find("no taskpool tables"), std::string::npos) << missing.err;
  auto a = cli({"add", "--type", "memo", "--creator", "123", "--payload", R"({"text":"hi"})", "--in", "1h", "--level", "7"});
  ASSERT_EQ(a.rc, 0) << a.err;
  std::string id = a.out.substr(0, a.out.find('\n'));
  auto show = nlohmann::json::parse(cli({"show", id}).out);
  EXPECT_EQ(show["task_level"], 7);
  EXPECT_EQ(show["payload"]["text"], "hi");
  EXPECT_NE(cli({"list", "--status", "waiting"}).out.find("\n" + id + " "), std::string::npos);
  EXPECT_EQ(cli({"extend", id, "--by", "60s"}).rc, 0);
  EXPECT_EQ(cli({"cancel", id}).rc, 0);
  EXPECT_EQ(cli({"cancel", id}).rc, 4);
  EXPECT_EQ(cli({"retry", id}).rc, 0);
  EXPECT_EQ(nlohmann::json::parse(cli({"stats", "--json"}).out)["waiting"], 1);
  EXPECT_NE(cli({"reports", "--ack"}).out.find("\"status\":\"cancelled\""), std::string::npos);
  EXPECT_EQ(cli({"prune", "--older-than", "0s"}).rc, 0);
  // The daemon on the same database runs a task that is due now.
  auto e = cli({"add", "--type", "exec", "--payload", R"({"argv": ["true"]})"});
  ASSERT_EQ(e.rc, 0) << e.err;
  std::string eid = e.out.substr(0, e.out.find('\n'));
  pid_t d = serve();
  EXPECT_TRUE(taskpool::test::eventually([&] {
    auto j = nlohmann::json::parse(cli({"show", eid}).out, nullptr, false);
    return j.is_object() && j["task_status"] == "done";
  }));
  kill(d, SIGTERM);
  int st = 0;
  waitpid(d, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  taskpool::test::pg_drop_schema(base, schema);
}

// Invariant: a refused login prints one error line that does not contain the password.
TEST_F(CliTest, PostgresErrorsNeverShowThePassword) {
  if (taskpool::test::pg_skipped()) GTEST_SKIP() << "TASKPOOL_TEST_PG=skip";
  const std::string base = taskpool::test::pg_base_uri();
  if (base.empty()) FAIL() << taskpool::test::kPgUnset;
  auto at = base.find('@');
  ASSERT_NE(at, std::string::npos);
  const std::string secret = "Wr0ngPassw0rd-x";
  const std::string bad = base.substr(0, base.find(':', base.find("://") + 3)) + ":" + secret + base.substr(at);
  for (const char* cmd : {"list", "add"}) {
    auto r = cmd == std::string("add") ? cli({"--db", bad, "add", "--type", "memo"}) : cli({"--db", bad, "list"});
    EXPECT_NE(r.rc, 0);
    EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // The daemon waits for its server (up to the connect timeout, 10 s), logging each retry, and
  // then fails the same way: exit 1, its last line the error, no line with the password.
  auto r = cli({"--db", bad, "serve"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("opening again in"), std::string::npos) << r.err;
  EXPECT_NE(r.err.rfind("taskpool: error: "), std::string::npos) << r.err;
}

}  // namespace
