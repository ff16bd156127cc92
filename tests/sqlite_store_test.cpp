// tests/sqlite_store_test.cpp — what only the SQLite store has: files, PRAGMAs, migrations of old
// files, read-only files and directories, text written into INTEGER columns. The behaviour both
// stores share is in store_test.cpp (the conformance suite).
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/store_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/sqlite_store.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace taskpool {
namespace {

class SqliteStoreTest : public test::StoreFixture {};

// Invariant: opening a version-1 database migrates it in place: rows kept, the due index
// replaced, the version-3 columns added, user_version raised.
TEST_F(SqliteStoreTest, MigratesVersionOne) {
  auto id = store_->add(memo());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX tasks_due; CREATE INDEX tasks_due ON tasks (task_status, exec_time); "
                         "DROP TABLE nodes; DROP TABLE leader; "  // v6
                         "DROP INDEX tasks_status; DROP INDEX reports_task; "  // v5
                         "DROP INDEX tasks_fair_creator; DROP INDEX tasks_fair_group; DROP INDEX tasks_caps; "  // v4
                         "ALTER TABLE tasks DROP COLUMN cron; ALTER TABLE tasks DROP COLUMN tz; "
                         "ALTER TABLE tasks DROP COLUMN debounce_ms; ALTER TABLE tasks DROP COLUMN max_wait_ms; "
                         "ALTER TABLE tasks DROP COLUMN debounce_start; "
                         "DROP INDEX tasks_ending; ALTER TABLE tasks DROP COLUMN planned_time; "  // v3
                         "ALTER TABLE tasks DROP COLUMN claim_token; ALTER TABLE tasks DROP COLUMN revision; "
                         "ALTER TABLE tasks DROP COLUMN report_on; PRAGMA user_version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  store_ = open_sqlite_store(path_);
  EXPECT_EQ(store_->get(id)->creator_id, "123");
  EXPECT_EQ(claim_started("r", 10).size(), 1u);
  store_.reset();
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  auto scalar = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &st, nullptr), SQLITE_OK);
    EXPECT_EQ(sqlite3_step(st), SQLITE_ROW);
    std::int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
  };
  EXPECT_EQ(scalar("PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(scalar("SELECT count(*) FROM pragma_index_info('tasks_due')"), 3);
  EXPECT_EQ(scalar("SELECT count(*) FROM pragma_table_info('tasks') WHERE name IN "
                   "('planned_time', 'claim_token', 'revision', 'report_on', 'cron', 'tz', 'debounce_ms', 'max_wait_ms', "
                   "'debounce_start')"),
            9);
  EXPECT_EQ(scalar("SELECT count(*) FROM pragma_index_info('tasks_status')"), 2);
  EXPECT_EQ(scalar("SELECT count(*) FROM sqlite_master WHERE name IN ('tasks_fair_creator', 'tasks_fair_group', 'tasks_caps')"), 3);
  EXPECT_EQ(scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('nodes', 'leader')"), 2);
  sqlite3_close(db);
}

// Invariant: opening refuses files that are not taskpool databases, and newer schemas.
TEST_F(SqliteStoreTest, RefusesForeignOrNewerDatabases) {
  std::string foreign = (dir_ / "foreign.db").string();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "CREATE TABLE t(x)", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  EXPECT_THROW(open_sqlite_store(foreign), StoreError);
  std::string garbage = (dir_ / "garbage.db").string();
  std::ofstream(garbage) << std::string(4096, 'x');
  EXPECT_THROW(open_sqlite_store(garbage), StoreError);
  store_.reset();
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  try {
    open_sqlite_store(path_);
    FAIL() << "a newer schema must be refused";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos);
  }
  SqliteOptions no_create;
  no_create.create = false;
  EXPECT_THROW(open_sqlite_store((dir_ / "missing.db").string(), no_create), StoreError);
}

// Invariant (#16.4): rows another program wrote with an exec_time that is not an in-range
// integer (text, a far-future sentinel) are never "due" (so no claim loop spins on them) and
// recovery marks them failed with last_error naming the value.
TEST_F(SqliteStoreTest, MalformedExecTimesAreFailedNeverDue) {
  sql("INSERT INTO tasks (task_type, create_time, exec_time, updated_time) VALUES "
      "('memo', 0, '2026-01-01 10:00:00', 0), ('memo', 0, '9999-12-31', 0), ('memo', 0, 253402214400000, 0)");
  auto later = std::chrono::system_clock::now() + 1h;
  NewTask ok = memo();
  ok.exec_time = later;
  auto ok_id = store_->add(ok);
  EXPECT_EQ(std::chrono::floor<std::chrono::milliseconds>(*store_->next_due()),
            std::chrono::floor<std::chrono::milliseconds>(later));
  EXPECT_TRUE(store_->claim_due({"r", 10, 30s}).empty());
  store_->recover_expired();
  for (std::int64_t id = 1; id <= 3; ++id) {
    auto r = store_->get(id);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, TaskStatus::failed) << id;
    ASSERT_TRUE(r->last_error) << id;
    EXPECT_NE(r->last_error->find("exec_time"), std::string::npos) << *r->last_error;
  }
  EXPECT_NE(store_->get(1)->last_error->find("'2026-01-01 10:00:00'"), std::string::npos);
  EXPECT_NE(store_->get(3)->last_error->find("253402214400000"), std::string::npos);
  EXPECT_EQ(store_->get(ok_id)->status, TaskStatus::waiting);
  EXPECT_EQ(store_->reports(true, 10).size(), 3u);
}

// Invariant (#11.6): many processes opening a database file that does not exist yet all
// succeed: exactly one creates the schema, every add lands. (Real processes, started together
// through a pipe; several rounds, since the race is a matter of timing.)
TEST_F(SqliteStoreTest, ConcurrentFirstUseAcrossProcesses) {
  const int procs = 20, rounds = static_cast<int>(test::scaled(5));
  for (int round = 0; round < rounds; ++round) {
    std::string file = (dir_ / ("new-" + std::to_string(round) + ".db")).string();
    int go[2];
    ASSERT_EQ(pipe(go), 0);
    std::vector<pid_t> kids;
    for (int i = 0; i < procs; ++i) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        close(go[1]);
        char c;
        [[maybe_unused]] auto n = read(go[0], &c, 1);  // wait for the start: EOF when the parent closes
        int rc = 0;
        try {
          auto s = open_sqlite_store(file);
          NewTask t;
          t.task_type = "memo";
          s->add(t);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "child: %s\n", e.what());
          rc = 1;
        }
        _exit(rc);
      }
      kids.push_back(pid);
    }
    close(go[0]);
    close(go[1]);  // all children start now
    int failed = 0;
    for (pid_t k : kids) {
      int status = 0;
      waitpid(k, &status, 0);
      failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    EXPECT_EQ(failed, 0) << "round " << round;
    EXPECT_EQ(open_sqlite_store(file)->stats().waiting, procs) << "round " << round;
  }
}

// Invariant (#11.11): create=false never creates a file ("no database at PATH"); read_only
// opens without writing anything (no -wal/-shm files, no migration) and refuses writes.
TEST_F(SqliteStoreTest, ReadOnlyAndNoCreate) {
  SqliteOptions no_create;
  no_create.create = false;
  std::string missing = (dir_ / "missing.db").string();
  try {
    open_sqlite_store(missing, no_create);
    ADD_FAILURE() << "opened a missing file";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("no database at " + missing), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(missing));
  SqliteOptions ro;
  ro.read_only = true;
  EXPECT_THROW(open_sqlite_store(missing, ro), StoreError);
  EXPECT_FALSE(std::filesystem::exists(missing));
  auto id = store_->add(memo());
  store_.reset();  // the last connection closes: -wal and -shm are removed
  ASSERT_FALSE(std::filesystem::exists(path_ + "-wal"));
  auto size = std::filesystem::file_size(path_);
  auto reader = open_sqlite_store(path_, ro);
  EXPECT_EQ(reader->get(id)->creator_id, "123");
  EXPECT_EQ(reader->list({}).size(), 1u);
  EXPECT_EQ(reader->stats().waiting, 1);
  EXPECT_THROW(reader->add(memo()), StoreError);
  EXPECT_EQ(std::filesystem::file_size(path_), size);
  reader.reset();
  // A read-only file in a read-only directory (no -wal/-shm can be made there) can still be read:
  // checked in a child that is not root (root ignores permissions).
  std::filesystem::path ro_dir = dir_ / "ro";
  std::filesystem::create_directories(ro_dir);
  std::filesystem::copy_file(path_, ro_dir / "tasks.db");
  chmod((ro_dir / "tasks.db").c_str(), 0444);
  chmod(ro_dir.c_str(), 0555);
  chmod(dir_.c_str(), 0755);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    try {
      auto r = open_sqlite_store((ro_dir / "tasks.db").string(), ro);
      _exit(r->list({}).size() == 1 && r->stats().waiting == 1 ? 0 : 1);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "read-only open: %s\n", e.what());
      _exit(2);
    }
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  EXPECT_FALSE(std::filesystem::exists(ro_dir / "tasks.db-wal"));
  chmod(ro_dir.c_str(), 0755);
}

}  // namespace
}  // namespace taskpool
