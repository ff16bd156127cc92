// tests/common/store_fixture.hpp — a fresh task database per test, on either backend.
//   StoreFixture          SQLite (a file in a per-test directory)
//   BackendStoreFixture   parameterised over Backend: the conformance suite (tests/store_test.cpp)
//                         runs every test on SQLite and on PostgreSQL (a fresh schema per test
//                         in TASKPOOL_TEST_PG, dropped afterwards; see common/pg_util.hpp)
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "common/pg_util.hpp"
#include "common/test_util.hpp"
#include "taskpool/postgres_store.hpp"
#include "taskpool/sqlite_store.hpp"

namespace taskpool::test {

enum class Backend { sqlite, postgres };
inline std::string backend_name(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::sqlite ? "sqlite" : "postgres";
}

// db_ is the database string (a path, or a postgresql:// URI with ?schema=); store_ is open on it.
class StoreOn : public ::testing::Test {
 protected:
  void open_backend(Backend b) {
    backend_ = b;
    if (b == Backend::sqlite) {
      path_ = tmp_.file("tasks.db");
      db_ = path_;
    } else {
      if (pg_skipped()) GTEST_SKIP() << "TASKPOOL_TEST_PG=skip";
      pg_uri_ = pg_base_uri();
      if (pg_uri_.empty()) FAIL() << kPgUnset;
      schema_ = fresh_schema();
      db_ = with_schema(pg_uri_, schema_);
    }
    store_ = open_store(db_);
  }
  void TearDown() override {
    store_.reset();
    if (!schema_.empty()) pg_drop_schema(pg_uri_, schema_);
  }
  bool pg() const { return backend_ == Backend::postgres; }
  // Claims and starts (the dispatcher's two steps before a run).
  std::vector<TaskRecord> claim_started(TaskStore& s, std::string_view owner, std::size_t n,
                                        std::chrono::milliseconds lease = std::chrono::seconds(30)) {
    auto got = s.claim_due({std::string(owner), n, lease});
    std::vector<TaskRecord*> ptrs;
    for (auto& r : got) ptrs.push_back(&r);
    auto ok = s.start_runs(ptrs);
    for (bool b : ok) EXPECT_TRUE(b);
    return got;
  }
  std::vector<TaskRecord> claim_started(std::string_view owner, std::size_t n, std::chrono::milliseconds lease = std::chrono::seconds(30)) {
    return claim_started(*store_, owner, n, lease);
  }
  NewTask memo(std::string who = "123") {
    NewTask t;
    t.creator_id = who;
    t.group_id = "456";
    t.task_type = "memo";
    t.payload = R"({"text":"stand-up"})";
    return t;
  }

  // Another connection to the same database (as another process would open it).
  std::unique_ptr<TaskStore> open_db(const StoreOptions& o = {}) { return open_store(db_, o); }

  // Plain SQL on the database from outside the store; scalar() gives the first value (-1: none).
  std::int64_t scalar(const std::string& sql) {
    if (pg()) {
      auto v = pg_query(pg_uri_, schema_, sql);
      return v ? std::stoll(*v) : -1;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    std::int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
  }
  void sql(const std::string& text) {
    if (pg()) {
      pg_query(pg_uri_, schema_, text);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char* err = nullptr;
    ASSERT_EQ(sqlite3_exec(db, text.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_close(db);
  }

  TempDir tmp_;
  const std::filesystem::path& dir_ = tmp_.path();
  Backend backend_ = Backend::sqlite;
  std::string path_;             // SQLite: the file
  std::string pg_uri_, schema_;  // PostgreSQL: the server (no ?schema=) and this test's schema
  std::string db_;
  std::unique_ptr<TaskStore> store_;
};

class StoreFixture : public StoreOn {
 protected:
  void SetUp() override { open_backend(Backend::sqlite); }
};

class BackendStoreFixture : public StoreOn, public ::testing::WithParamInterface<Backend> {
 protected:
  void SetUp() override { open_backend(GetParam()); }
};

}  // namespace taskpool::test
