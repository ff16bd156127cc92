// tests/store_test.cpp — the durable task table (SQLite TaskStore).
#include <sqlite3.h>
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

namespace taskpool {
namespace {

class StoreTest : public test::StoreFixture {
 protected:
  NewTask memo(std::string who = "123") {
    NewTask t;
    t.creator_id = who;
    t.group_id = "456";
    t.task_type = "memo";
    t.payload = R"({"text":"stand-up"})";
    return t;
  }
};

TEST_F(StoreTest, AddAndGetRoundTrip) {
  NewTask t = memo();
  t.by_plugin = "reminder";
  t.exec_task = "notify";
  t.task_level = 7;
  t.report_group_id = "789";
  t.max_attempts = 3;
  t.repeat_every = 60s;
  auto at = std::chrono::system_clock::now() + 1h;
  t.exec_time = at;
  auto id = store_->add(t);
  auto r = store_->get(id);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->creator_id, "123");
  EXPECT_EQ(r->by_plugin, "reminder");
  EXPECT_EQ(r->handler(), "notify");
  EXPECT_EQ(r->payload, R"({"text":"stand-up"})");
  EXPECT_EQ(r->task_level, 7);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->repeat_every, std::chrono::milliseconds(60s));
  EXPECT_EQ(r->max_attempts, 3);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(r->exec_time.time_since_epoch()),
            std::chrono::duration_cast<std::chrono::milliseconds>(at.time_since_epoch()));
  EXPECT_FALSE(store_->get(id + 100).has_value());
}

// Invariant: bad input is rejected with a message naming the field, and nothing is written —
// for a batch, not even the good rows.
TEST_F(StoreTest, BadInputStoresNothing) {
  NewTask bad_level = memo();
  bad_level.task_level = 12;
  EXPECT_THROW(
      {
        try {
          store_->add(bad_level);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("task_level"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  NewTask bad_json = memo();
  bad_json.payload = "{not json";
  EXPECT_THROW(store_->add(bad_json), std::invalid_argument);
  NewTask no_handler;
  EXPECT_THROW(store_->add(no_handler), std::invalid_argument);
  EXPECT_THROW(store_->add_batch({memo(), memo(), bad_json}), std::invalid_argument);
  auto st = store_->stats();
  EXPECT_EQ(st.waiting, 0);
  EXPECT_TRUE(store_->list({}).empty());
}

// Invariant: a claim takes only due waiting tasks, highest level first, and marks them running
// under a lease; a second claim gets none of them.
TEST_F(StoreTest, ClaimDueInPriorityOrder) {
  auto now = std::chrono::system_clock::now();
  std::vector<NewTask> ts;
  for (int level : {1, 9, 5, 9}) {
    NewTask t = memo();
    t.task_level = level;
    t.exec_time = now - 1s;
    ts.push_back(t);
  }
  NewTask later = memo();
  later.exec_time = now + 1h;
  ts.push_back(later);
  auto ids = store_->add_batch(ts);
  auto got = store_->claim_due("runner-a", 10, 30s);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].task_level, 9);
  EXPECT_EQ(got[1].task_level, 9);
  EXPECT_LT(got[0].id, got[1].id);
  EXPECT_EQ(got[2].task_level, 5);
  EXPECT_EQ(got[3].task_level, 1);
  for (auto& r : got) {
    EXPECT_EQ(r.status, TaskStatus::running);
    EXPECT_EQ(r.lease_owner, "runner-a");
    EXPECT_EQ(r.attempts, 1);
  }
  EXPECT_TRUE(store_->claim_due("runner-b", 10, 30s).empty());
  EXPECT_EQ(store_->stats().running, 4);
  EXPECT_EQ(store_->next_due(), store_->get(ids.back())->exec_time);
}

// Invariant: with a backlog spread over levels, successive claims return every due task exactly
// once, highest level first and oldest first within a level, and never a task not yet due.
TEST_F(StoreTest, ClaimBacklogAcrossLevelsInOrder) {
  auto now = std::chrono::system_clock::now();
  std::vector<NewTask> ts;
  for (int i = 0; i < 3000; ++i) {
    NewTask t = memo();
    t.task_level = (i * 7) % 10;
    t.exec_time = now - std::chrono::seconds(i % 13);
    ts.push_back(t);
  }
  for (int level = 0; level <= 9; ++level) {  // not due, at every level
    NewTask t = memo();
    t.task_level = level;
    t.exec_time = now + 1h;
    ts.push_back(t);
  }
  store_->add_batch(ts);
  std::vector<TaskRecord> all;
  for (;;) {
    auto got = store_->claim_due("runner", 256, 30s);
    if (got.empty()) break;
    all.insert(all.end(), got.begin(), got.end());
  }
  ASSERT_EQ(all.size(), 3000u);
  for (std::size_t i = 1; i < all.size(); ++i) {
    const auto &a = all[i - 1], &b = all[i];
    ASSERT_TRUE(a.task_level > b.task_level ||
                (a.task_level == b.task_level &&
                 (a.exec_time < b.exec_time || (a.exec_time == b.exec_time && a.id < b.id))))
        << "claim order broken at " << i;
  }
  EXPECT_EQ(store_->stats().waiting, 10);
}

// Invariant: a task re-armed (upserted to a new exec_time) while it runs waits for its new time
// after the run instead of finishing; a retried run keeps its backoff time.
TEST_F(StoreTest, RearmedDuringRunWaitsForNewTime) {
  NewTask t = memo();
  t.unique_key = "k";
  auto id = store_->add(t);
  auto got = store_->claim_due("r", 1, 30s);
  ASSERT_EQ(got.size(), 1u);
  auto later = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() + 1h);
  t.exec_time = later;
  EXPECT_EQ(store_->add(t), id);
  ASSERT_TRUE(store_->complete(got[0], "r", RunResult{true, "ok", "", false}, RetryPolicy{}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, later);
  EXPECT_FALSE(r->lease_owner);
  EXPECT_EQ(store_->reports(true, 10).size(), 1u);  // the run itself is still reported
  // Completing twice, or under another owner, changes nothing.
  EXPECT_FALSE(store_->complete(got[0], "r", RunResult{true, "ok", "", false}, RetryPolicy{}));
}

// Invariant: opening a version-1 database migrates it in place: rows kept, the due index
// replaced, user_version raised.
TEST_F(StoreTest, MigratesVersionOne) {
  auto id = store_->add(memo());
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "DROP INDEX tasks_due; CREATE INDEX tasks_due ON tasks (task_status, exec_time); "
                         "PRAGMA user_version = 1",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  store_ = open_sqlite_store(path_);
  EXPECT_EQ(store_->get(id)->creator_id, "123");
  EXPECT_EQ(store_->claim_due("r", 10, 30s).size(), 1u);
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
  sqlite3_close(db);
}

// Invariant: completing a one-shot task records the result and reports to the creator when no
// report target is set (the origin's rule).
TEST_F(StoreTest, CompleteWritesResultAndReport) {
  NewTask t = memo();
  t.report_user_id = "";
  auto id = store_->add(t);
  auto claimed = store_->claim_due("r", 1, 30s);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_TRUE(store_->complete(claimed[0], "r", {.ok = true, .result = "sent"}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::done);
  EXPECT_EQ(r->result, "sent");
  EXPECT_FALSE(r->lease_owner.has_value());
  auto reps = store_->reports(true, 10);
  ASSERT_EQ(reps.size(), 1u);
  EXPECT_EQ(reps[0].task_id, id);
  EXPECT_EQ(reps[0].report_user_id, "123");
  EXPECT_EQ(reps[0].report_group_id, "456");
  EXPECT_EQ(reps[0].status, TaskStatus::done);
  EXPECT_EQ(store_->ack_reports({reps[0].id}), 1u);
  EXPECT_TRUE(store_->reports(true, 10).empty());
  EXPECT_EQ(store_->reports(false, 10).size(), 1u);
  EXPECT_FALSE(store_->complete(claimed[0], "r", {}, {}));  // no longer running
}

// Invariant: complete_batch records many runs in one transaction, refusing only the ones whose
// lease is not the caller's.
TEST_F(StoreTest, CompleteBatch) {
  store_->add_batch({memo(), memo(), memo()});
  auto c = store_->claim_due("r", 3, 30s);
  ASSERT_EQ(c.size(), 3u);
  TaskRecord foreign = c[2];
  ASSERT_TRUE(store_->release(c[2], "r"));
  auto recorded = store_->complete_batch({{&c[0], {.ok = true, .result = "a"}}, {&c[1], {.ok = false, .error = "b"}}, {&foreign, {}}},
                                         "r", {});
  EXPECT_EQ(recorded, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(store_->get(c[0].id)->status, TaskStatus::done);
  EXPECT_EQ(store_->get(c[1].id)->status, TaskStatus::failed);
  EXPECT_EQ(store_->get(c[2].id)->status, TaskStatus::waiting);
  EXPECT_EQ(store_->reports(true, 10).size(), 2u);
}

// Invariant: a repeating task returns to waiting on its grid: the next slot is the first grid
// point after now (no drift; missed slots are not run twice or in a burst).
TEST_F(StoreTest, RepeatingStaysOnGrid) {
  auto now = std::chrono::system_clock::now();
  NewTask t = memo();
  t.repeat_every = 10s;
  auto slot = std::chrono::time_point_cast<std::chrono::milliseconds>(now - 35s);
  t.exec_time = slot;
  auto id = store_->add(t);
  auto c = store_->claim_due("r", 1, 30s);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(store_->complete(c[0], "r", {.ok = true, .result = "ok"}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, slot + 40s);  // slots -25, -15, -5 were missed; +5 is next
  EXPECT_EQ(r->attempts, 0);
  EXPECT_TRUE(store_->claim_due("r", 1, 30s).empty());  // not due again before its slot
}

// Invariant: failures retry with backoff up to max_attempts, then the task fails and reports.
TEST_F(StoreTest, RetryWithBackoffThenFail) {
  NewTask t = memo();
  t.max_attempts = 3;
  auto id = store_->add(t);
  RetryPolicy fast{.base = 0ms, .max = 0ms, .jitter = 0};
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto c = store_->claim_due("r", 1, 30s);
    ASSERT_EQ(c.size(), 1u) << attempt;
    EXPECT_EQ(c[0].attempts, attempt);
    ASSERT_TRUE(store_->complete(c[0], "r", {.ok = false, .error = "boom " + std::to_string(attempt)}, fast));
  }
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::failed);
  EXPECT_EQ(r->last_error, "boom 3");
  auto reps = store_->reports(true, 10);
  ASSERT_EQ(reps.size(), 1u);  // only the final outcome is reported
  EXPECT_EQ(reps[0].status, TaskStatus::failed);
  EXPECT_EQ(reps[0].error, "boom 3");
  // Backoff grows: with a 1 s base the retry lands in the future.
  auto id2 = store_->add(t);
  auto c = store_->claim_due("r", 1, 30s);
  ASSERT_TRUE(store_->complete(c[0], "r", {.ok = false, .error = "x"}, RetryPolicy{.base = 1s, .max = 1min, .jitter = 0.2}));
  auto r2 = store_->get(id2);
  EXPECT_EQ(r2->status, TaskStatus::waiting);
  EXPECT_GT(r2->exec_time, std::chrono::system_clock::now() + 700ms);
  // retry() brings a failed task back.
  EXPECT_TRUE(store_->retry(id));
  EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  EXPECT_FALSE(store_->retry(id));
}

// Invariant: upsert by unique_key updates the live task instead of adding a second one.
TEST_F(StoreTest, UpsertUpdatesLiveTask) {
  NewTask t = memo();
  t.task_type = "img_search_cycle";
  t.unique_key = "123:456:img_search_cycle";
  auto first = store_->add(t);
  t.exec_time = std::chrono::system_clock::now() + 60s;
  t.payload = R"({"n":2})";
  t.task_level = 8;
  auto second = store_->add(t);
  EXPECT_EQ(first, second);
  auto r = store_->get(first);
  EXPECT_EQ(r->payload, R"({"n":2})");
  EXPECT_EQ(r->task_level, 8);
  EXPECT_EQ(store_->stats().waiting, 1);
  ASSERT_TRUE(store_->cancel(first));
  EXPECT_NE(store_->add(t), first);  // the key is free once the task is no longer live
}

// Invariant: concurrent upserts of one key from many threads leave exactly one live task.
TEST_F(StoreTest, UpsertRaceAcrossThreads) {
  std::vector<std::thread> ts;
  std::vector<std::unique_ptr<TaskStore>> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(open_sqlite_store(path_));
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] {
      NewTask t = memo();
      t.unique_key = "k";
      for (int k = 0; k < 100; ++k) (i % 2 ? *store_ : *conns[static_cast<std::size_t>(i)]).add(t);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(store_->stats().waiting, 1);
}

// Invariant: the same across processes (each child opens its own connection).
TEST_F(StoreTest, UpsertRaceAcrossProcesses) {
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto s = open_sqlite_store(path_);
        NewTask t;
        t.task_type = "img_search_cycle";
        t.unique_key = "proc-key";
        for (int k = 0; k < 50; ++k) s->add(t);
      } catch (...) {
        rc = 1;
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int status = 0;
    waitpid(k, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  EXPECT_EQ(store_->stats().waiting, 1);
}

// Invariant: extend/reschedule move a waiting task's deadline; cancel ends it and reports.
TEST_F(StoreTest, ExtendRescheduleCancel) {
  auto at = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() + 1h);
  NewTask t = memo();
  t.exec_time = at;
  auto id = store_->add(t);
  EXPECT_TRUE(store_->extend(id, 60s));
  EXPECT_EQ(store_->get(id)->exec_time, at + 60s);
  EXPECT_TRUE(store_->reschedule(id, at));
  EXPECT_EQ(store_->get(id)->exec_time, at);
  EXPECT_TRUE(store_->cancel(id));
  EXPECT_EQ(store_->get(id)->status, TaskStatus::cancelled);
  EXPECT_FALSE(store_->cancel(id));
  EXPECT_FALSE(store_->extend(id, 1s));
  EXPECT_EQ(store_->reports(true, 10).at(0).status, TaskStatus::cancelled);
}

// Invariant: a run whose lease expired (its runner died) goes back to waiting; the dead
// runner's late completion is refused; release() gives a claim back without counting it.
TEST_F(StoreTest, LeaseExpiryRecoveryAndRelease) {
  auto id = store_->add(memo());
  auto c = store_->claim_due("dead-runner", 1, -1000ms);  // a lease already in the past
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(store_->recover_expired(), 1u);
  EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  auto c2 = store_->claim_due("new-runner", 1, 30s);
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_FALSE(store_->complete(c[0], "dead-runner", {.ok = true}, {}));
  EXPECT_FALSE(store_->renew_lease(id, "dead-runner", 30s));
  EXPECT_TRUE(store_->renew_lease(id, "new-runner", 30s));
  EXPECT_TRUE(store_->release(c2[0], "new-runner"));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->attempts, 1);  // the expired run counted; the released one did not
}

// Invariant: prune deletes only finished tasks and acknowledged reports older than retention.
TEST_F(StoreTest, Prune) {
  auto done = store_->add(memo());
  auto live = store_->add(memo());
  store_->reschedule(live, std::chrono::system_clock::now() + 1h);
  auto c = store_->claim_due("r", 10, 30s);
  ASSERT_EQ(c.size(), 1u);
  store_->complete(c[0], "r", {.ok = true}, {});
  EXPECT_EQ(store_->prune(1h), 0u);  // too recent
  EXPECT_EQ(store_->prune(-1000ms), 1u);
  EXPECT_FALSE(store_->get(done).has_value());
  EXPECT_TRUE(store_->get(live).has_value());
}

// Invariant: another connection's commit changes change_counter (cross-process wake-up).
TEST_F(StoreTest, ChangeCounterSeesOtherConnections) {
  auto before = store_->change_counter();
  auto other = open_sqlite_store(path_);
  other->add(memo());
  EXPECT_NE(store_->change_counter(), before);
}

// Invariant: this connection's own single-statement writes move change_counter too (the
// dispatcher caches the next due time until the counter moves; a regression left recovered
// tasks waiting forever).
TEST_F(StoreTest, ChangeCounterSeesOwnAutoCommitWrites) {
  store_->add(memo());
  store_->claim_due("dead", 1, -1000ms);
  auto before = store_->change_counter();
  EXPECT_EQ(store_->recover_expired(), 1u);
  EXPECT_NE(store_->change_counter(), before);
}

// Invariant: opening refuses files that are not taskpool databases, and newer schemas.
TEST_F(StoreTest, RefusesForeignOrNewerDatabases) {
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

}  // namespace
}  // namespace taskpool
