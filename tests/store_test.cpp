// tests/store_test.cpp — the conformance suite of the durable task table: every test runs on each
// TaskStore backend (SQLite and PostgreSQL, tests/common/store_fixture.hpp). Backend-specific
// tests: sqlite_store_test.cpp, postgres_store_test.cpp.
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

class StoreTest : public test::BackendStoreFixture {};

TEST_P(StoreTest, AddAndGetRoundTrip) {
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
TEST_P(StoreTest, BadInputStoresNothing) {
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

// Invariant: add_batch stores every field exactly as add() would, whatever the text holds
// (quotes, backslashes, braces, commas, the word NULL, unicode, empty strings), mixes plain
// tasks and upserts, and returns ids in input order (new rows' ids rising in input order); a
// batch with one invalid record writes nothing.
TEST_P(StoreTest, BatchRoundTripsAwkwardFields) {
  NewTask live = memo();
  live.unique_key = "k,{\"1\"}";
  const std::int64_t live_id = store_->add(live);

  const auto at = std::chrono::system_clock::now() + 2h;
  std::vector<NewTask> ts;
  NewTask a = memo();
  a.creator_id = "say \"hi\"";
  a.group_id = R"(back\slash\\ and \")";
  a.task_type = "{braces},commas,";
  a.by_plugin = "NULL";
  a.exec_task = "h\u00e9llo \u4e16\u754c \U0001F600";
  a.payload = R"({"q":"a \"quoted\" \\ back","b":"{x,y}","u":"\u00e9\u4e16","e":"","n":null,"NULL":[1,2]})";
  a.report_user_id = "  spaced  ";
  a.report_group_id = "";
  a.exec_time = at;
  a.task_level = 9;
  a.max_attempts = 4;
  a.repeat_every = 90s;
  a.report_on = ReportOn::never;
  ts.push_back(a);
  NewTask b;  // every default: empty strings, payload "{}", now, no report_on
  b.task_type = "plain";
  ts.push_back(b);
  NewTask up = live;  // an upsert of the live row
  up.payload = R"({"text":"moved \"\\"})";
  ts.push_back(up);
  NewTask fresh_up = memo();
  fresh_up.unique_key = "new\\key";
  ts.push_back(fresh_up);
  NewTask c = memo();
  c.payload = R"(["", "\\", "\"", "}", "{", ","])";
  c.report_on = ReportOn::failure;
  c.cron = "0 0 1 1 *";
  c.tz = "Europe/Berlin";
  ts.push_back(c);

  const auto ids = store_->add_batch(ts);
  ASSERT_EQ(ids.size(), ts.size());
  EXPECT_EQ(ids[2], live_id);
  EXPECT_LT(live_id, ids[0]);
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[1], ids[3]);
  EXPECT_LT(ids[3], ids[4]);
  const auto ms = [](wall_time t) { return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()); };
  for (std::size_t i = 0; i < ts.size(); ++i) {
    SCOPED_TRACE(i);
    const NewTask& t = ts[i];
    auto r = store_->get(ids[i]);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->creator_id, t.creator_id);
    EXPECT_EQ(r->group_id, t.group_id);
    EXPECT_EQ(r->task_type, t.task_type);
    EXPECT_EQ(r->by_plugin, t.by_plugin);
    EXPECT_EQ(r->exec_task, t.exec_task);
    EXPECT_EQ(r->payload, t.payload);
    EXPECT_EQ(r->task_level, t.task_level);
    EXPECT_EQ(r->report_user_id, t.report_user_id);
    EXPECT_EQ(r->report_group_id, t.report_group_id);
    EXPECT_EQ(r->repeat_every, t.repeat_every);
    EXPECT_EQ(r->max_attempts, t.max_attempts);
    EXPECT_EQ(r->report_on, t.report_on);
    EXPECT_EQ(r->cron, t.cron);
    EXPECT_EQ(r->tz, t.tz);
    EXPECT_EQ(r->status, TaskStatus::waiting);
    EXPECT_FALSE(r->last_error.has_value());
    EXPECT_FALSE(r->result.has_value());
    if (t.unique_key.empty()) {
      EXPECT_FALSE(r->unique_key.has_value());
    } else {
      EXPECT_EQ(r->unique_key, std::optional<std::string>(t.unique_key));
    }
    if (t.exec_time) {
      EXPECT_EQ(ms(r->exec_time), ms(*t.exec_time));
    }
  }
  // Defaults: now on the store's clock; a cron task's first occurrence as add() computes it.
  const auto now = std::chrono::system_clock::now();
  auto rb = store_->get(ids[1]);
  EXPECT_LE(rb->exec_time, now + 1s);
  EXPECT_GE(rb->exec_time, now - 60s);
  NewTask c_single = c;
  auto rc_single = store_->get(store_->add(c_single));
  EXPECT_EQ(ms(store_->get(ids[4])->exec_time), ms(rc_single->exec_time));
  EXPECT_GT(rc_single->exec_time, now);

  // One invalid record anywhere: nothing of the batch is written.
  const auto before = store_->list({}).size();
  NewTask bad = memo();
  bad.max_attempts = 0;
  NewTask bad_up = memo();
  bad_up.unique_key = "bad";
  bad_up.task_level = 42;
  EXPECT_THROW(store_->add_batch({a, b, bad}), std::invalid_argument);
  EXPECT_THROW(store_->add_batch({a, up, bad_up, b}), std::invalid_argument);
  NewTask bad_json = memo();
  bad_json.payload = "{\"a\":\"unterminated}";
  EXPECT_THROW(store_->add_batch({a, fresh_up, b, bad_json}), std::invalid_argument);
  EXPECT_EQ(store_->list({}).size(), before);
}

// Invariant: a claim takes only due waiting tasks, highest level first, and marks them running
// under a lease; a second claim gets none of them.
TEST_P(StoreTest, ClaimDueInPriorityOrder) {
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
  auto got = store_->claim_due({"runner-a", 10, 30s});
  ASSERT_EQ(got.size(), 4u);
  for (auto& r : got) EXPECT_EQ(r.attempts, 0) << "an attempt is counted when the run starts, not at the claim";
  std::vector<TaskRecord*> ptrs;
  for (auto& r : got) ptrs.push_back(&r);
  EXPECT_EQ(store_->start_runs(ptrs), std::vector<bool>(4, true));
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
  EXPECT_TRUE(store_->claim_due({"runner-b", 10, 30s}).empty());
  EXPECT_EQ(store_->stats().running, 4);
  EXPECT_EQ(store_->next_due(), store_->get(ids.back())->exec_time);
}

// Invariant: with a backlog spread over levels, successive claims return every due task exactly
// once, highest level first and oldest first within a level, and never a task not yet due.
TEST_P(StoreTest, ClaimBacklogAcrossLevelsInOrder) {
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
    auto got = store_->claim_due({"runner", 256, 30s});
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
TEST_P(StoreTest, RearmedDuringRunWaitsForNewTime) {
  NewTask t = memo();
  t.unique_key = "k";
  auto id = store_->add(t);
  auto got = claim_started("r", 1);
  ASSERT_EQ(got.size(), 1u);
  auto later = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() + 1h);
  t.exec_time = later;
  EXPECT_EQ(store_->add(t), id);
  ASSERT_TRUE(store_->complete(got[0], RunResult{true, "ok", "", false}, RetryPolicy{}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, later);
  EXPECT_FALSE(r->lease_owner);
  EXPECT_EQ(store_->reports(true, 10).size(), 1u);  // the run itself is still reported
  // Completing twice changes nothing.
  EXPECT_FALSE(store_->complete(got[0], RunResult{true, "ok", "", false}, RetryPolicy{}));
}

// Invariant: completing a one-shot task records the result and reports to the creator when no
// report target is set (the origin's rule).
TEST_P(StoreTest, CompleteWritesResultAndReport) {
  NewTask t = memo();
  t.report_user_id = "";
  auto id = store_->add(t);
  auto claimed = claim_started("r", 1);
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_TRUE(store_->complete(claimed[0], {.ok = true, .result = "sent"}, {}));
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
  EXPECT_FALSE(store_->complete(claimed[0], {}, {}));  // no longer running
}

// Invariant: complete_batch records many runs in one transaction, refusing only the ones whose
// claim is no longer held.
TEST_P(StoreTest, CompleteBatch) {
  store_->add_batch({memo(), memo(), memo()});
  auto c = claim_started("r", 3);
  ASSERT_EQ(c.size(), 3u);
  TaskRecord foreign = c[2];
  ASSERT_TRUE(store_->release(c[2], true));
  auto recorded = store_->complete_batch({{&c[0], {.ok = true, .result = "a"}}, {&c[1], {.ok = false, .error = "b"}}, {&foreign, {}}},
                                         {});
  EXPECT_EQ(recorded, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(store_->get(c[0].id)->status, TaskStatus::done);
  EXPECT_EQ(store_->get(c[1].id)->status, TaskStatus::failed);
  EXPECT_EQ(store_->get(c[2].id)->status, TaskStatus::waiting);
  EXPECT_EQ(store_->reports(true, 10).size(), 2u);
}

// Invariant: add_batch keeps every row's own value when a column is the same in some rows only,
// NULL or not (PostgreSQL sends a column that is the same in every row once).
TEST_P(StoreTest, BatchMixesSharedAndOwnValues) {
  std::vector<NewTask> ts(3, memo("same"));
  ts[1].repeat_every = 5s;  // NULL, set, NULL
  ts[0].report_on = ReportOn::never;  // set, set, NULL
  ts[1].report_on = ReportOn::never;
  ts[2].payload = R"({"own":true})";
  ts[2].task_level = 2;
  const auto ids = store_->add_batch(ts);
  ASSERT_EQ(ids.size(), 3u);
  for (std::size_t i = 0; i < ts.size(); ++i) {
    SCOPED_TRACE(i);
    auto r = store_->get(ids[i]);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->creator_id, "same");
    EXPECT_EQ(r->group_id, "456");
    EXPECT_EQ(r->payload, ts[i].payload);
    EXPECT_EQ(r->task_level, ts[i].task_level);
    EXPECT_EQ(r->repeat_every, ts[i].repeat_every);
    EXPECT_EQ(r->report_on, ts[i].report_on);
  }
}

// Invariant: a group commit (set-based on PostgreSQL: array parameters) stores any text as
// given in results, errors and reports, and starts claims in the same transaction.
TEST_P(StoreTest, CommitRoundTripsAwkwardText) {
  const std::string awkward[] = {"NULL", "{\"a\": \"x,y}\\\"q\"}", "line\nbreak\ttab \\ back", "\xc3\xa9t\xc3\xa9 ,{}\"'"};
  NewTask t = memo();
  t.report_user_id = awkward[3];
  t.report_group_id = awkward[1];
  store_->add_batch({t, t, t});
  auto c = claim_started("r", 2);
  ASSERT_EQ(c.size(), 2u);
  ClaimRequest req;
  req.owner = "r";
  req.limit = 1;
  req.lease = std::chrono::seconds(30);
  auto queued = store_->claim_due(req);
  ASSERT_EQ(queued.size(), 1u);
  TaskRecord* start = &queued[0];
  auto res = store_->commit({{&c[0], {.ok = true, .result = awkward[1]}}, {&c[1], {.ok = false, .error = awkward[2], .retryable = false}}},
                            {}, {start});
  EXPECT_EQ(res.recorded, (std::vector<bool>{true, true}));
  EXPECT_EQ(res.started, (std::vector<bool>{true}));
  EXPECT_EQ(queued[0].attempts, 1);
  EXPECT_EQ(store_->get(c[0].id)->result, awkward[1]);
  EXPECT_EQ(store_->get(c[1].id)->status, TaskStatus::failed);
  EXPECT_EQ(store_->get(c[1].id)->last_error, awkward[2]);
  auto reps = store_->reports(true, 10);
  ASSERT_EQ(reps.size(), 2u);
  for (const auto& r : reps) {
    EXPECT_EQ(r.report_user_id, awkward[3]);
    EXPECT_EQ(r.report_group_id, awkward[1]);
    if (r.task_id == c[0].id) EXPECT_EQ(r.result, awkward[1]);
    else EXPECT_EQ(r.error, awkward[2]);
  }
  // The held claim is seen held (and renewed); the recorded ones are not.
  std::vector<const TaskRecord*> all{&c[0], &queued[0], &c[1]};
  EXPECT_EQ(store_->claims_held(all), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(store_->renew_leases(all, std::chrono::seconds(60)), (std::vector<bool>{false, true, false}));
  EXPECT_TRUE(store_->complete(queued[0], {.ok = true, .result = awkward[0]}, {}));
  EXPECT_EQ(store_->get(queued[0].id)->result, awkward[0]);
}

// Invariant: a handler's result or error that is not text (a NUL byte, bytes that are not UTF-8)
// is stored with each bad byte as U+FFFD, on every store, and never fails the commit carrying
// it: the other outcomes of the same group commit are recorded too.
TEST_P(StoreTest, OutcomesThatAreNotTextAreStoredAsText) {
  store_->add_batch({memo(), memo(), memo()});
  auto c = claim_started("r", 3);
  ASSERT_EQ(c.size(), 3u);
  const std::string nul("a\0b", 3), bad = "x\xff\xc3(y", ok = "fine \xc3\xa9";
  auto res = store_->commit({{&c[0], {.ok = true, .result = nul}},
                             {&c[1], {.ok = false, .error = bad, .retryable = false}},
                             {&c[2], {.ok = true, .result = ok}}},
                            {}, {});
  EXPECT_EQ(res.recorded, (std::vector<bool>{true, true, true}));
  EXPECT_EQ(store_->get(c[0].id)->result, "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(store_->get(c[1].id)->last_error, "x\xEF\xBF\xBD\xEF\xBF\xBD(y");
  EXPECT_EQ(store_->get(c[2].id)->result, ok);
}

// Invariant: a repeating task returns to waiting on its grid: the next slot is the first grid
// point after now (no drift; missed slots are not run twice or in a burst).
TEST_P(StoreTest, RepeatingStaysOnGrid) {
  auto now = std::chrono::system_clock::now();
  NewTask t = memo();
  t.repeat_every = 10s;
  auto slot = std::chrono::time_point_cast<std::chrono::milliseconds>(now - 35s);
  t.exec_time = slot;
  auto id = store_->add(t);
  auto c = claim_started("r", 1);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(store_->complete(c[0], {.ok = true, .result = "ok"}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, slot + 40s);  // slots -25, -15, -5 were missed; +5 is next
  EXPECT_EQ(r->attempts, 0);
  EXPECT_TRUE(store_->claim_due({"r", 1, 30s}).empty());  // not due again before its slot
}

// Invariant: failures retry with backoff up to max_attempts, then the task fails and reports.
TEST_P(StoreTest, RetryWithBackoffThenFail) {
  NewTask t = memo();
  t.max_attempts = 3;
  auto id = store_->add(t);
  RetryPolicy fast{.base = 0ms, .max = 0ms, .jitter = 0};
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto c = claim_started("r", 1);
    ASSERT_EQ(c.size(), 1u) << attempt;
    EXPECT_EQ(c[0].attempts, attempt);
    ASSERT_TRUE(store_->complete(c[0], {.ok = false, .error = "boom " + std::to_string(attempt)}, fast));
  }
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::failed);
  EXPECT_EQ(r->last_error, "boom 3");
  EXPECT_EQ(r->attempts, 3) << "the runs of the occurrence stay visible after it ended (#11.9)";
  auto reps = store_->reports(true, 10);
  ASSERT_EQ(reps.size(), 1u);  // only the final outcome is reported
  EXPECT_EQ(reps[0].status, TaskStatus::failed);
  EXPECT_EQ(reps[0].error, "boom 3");
  // Backoff grows: with a 1 s base the retry lands in the future.
  auto id2 = store_->add(t);
  auto c = claim_started("r", 1);
  ASSERT_TRUE(store_->complete(c[0], {.ok = false, .error = "x"}, RetryPolicy{.base = 1s, .max = 1min, .jitter = 0.2}));
  auto r2 = store_->get(id2);
  EXPECT_EQ(r2->status, TaskStatus::waiting);
  EXPECT_GT(r2->exec_time, std::chrono::system_clock::now() + 700ms);
  // retry() brings a failed task back.
  EXPECT_TRUE(store_->retry(id));
  EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  EXPECT_FALSE(store_->retry(id));
}

// Invariant: upsert by unique_key updates the live task instead of adding a second one.
TEST_P(StoreTest, UpsertUpdatesLiveTask) {
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
TEST_P(StoreTest, UpsertRaceAcrossThreads) {
  std::vector<std::thread> ts;
  std::vector<std::unique_ptr<TaskStore>> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(open_db());
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] {
      NewTask t = memo();
      t.unique_key = "k";
      for (int k = 0; k < 100; ++k) (i % 2 ? *store_ : *conns[static_cast<std::size_t>(i)]).add(t);
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(store_->stats().waiting, 1);
}

// Invariant: the same across processes (each child opens its own connection).
TEST_P(StoreTest, UpsertRaceAcrossProcesses) {
  std::vector<pid_t> kids;
  for (int i = 0; i < 4; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int rc = 0;
      try {
        auto s = open_db();
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
TEST_P(StoreTest, ExtendRescheduleCancel) {
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
// runner's late completion and renewal are refused (fencing token); release() gives a claim back
// without counting it.
TEST_P(StoreTest, LeaseExpiryRecoveryAndRelease) {
  auto id = store_->add(memo());
  auto c = claim_started("dead-runner", 1, -1000ms);  // a lease already in the past
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(store_->recover_expired(), 1u);
  EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  auto c2 = claim_started("new-runner", 1);
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_NE(c2[0].claim_token, c[0].claim_token);
  EXPECT_FALSE(store_->complete(c[0], {.ok = true}, {}));
  EXPECT_EQ(store_->renew_leases({&c[0], &c2[0]}, 30s), (std::vector<bool>{false, true}));
  EXPECT_TRUE(store_->release(c2[0], true));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->attempts, 1);  // the expired run counted; the released one did not
}

// Invariant: prune deletes only finished tasks and acknowledged reports older than retention.
TEST_P(StoreTest, Prune) {
  auto done = store_->add(memo());
  auto live = store_->add(memo());
  store_->reschedule(live, std::chrono::system_clock::now() + 1h);
  auto c = claim_started("r", 10);
  ASSERT_EQ(c.size(), 1u);
  store_->complete(c[0], {.ok = true}, {});
  EXPECT_EQ(store_->prune(1h), 0u);  // too recent
  EXPECT_EQ(store_->prune(-1000ms), 1u);
  EXPECT_FALSE(store_->get(done).has_value());
  EXPECT_TRUE(store_->get(live).has_value());
}

// Invariant: wait_for_change returns soon after another connection commits (inotify), not at
// its deadline; and at the deadline when nothing changed. (The deadline only bounds a hang.)
TEST_P(StoreTest, WaitForChangeSeesOtherConnections) {
  store_->wait_for_change(std::chrono::steady_clock::now());  // consume what happened so far
  EXPECT_FALSE(store_->wait_for_change(std::chrono::steady_clock::now() + 10ms));
  auto other = open_db();
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);  // let the waiter sleep first (not an ordering the test needs)
    other->add(memo());
  });
  EXPECT_TRUE(store_->wait_for_change(std::chrono::steady_clock::now() + 60s));
  writer.join();
  // A batch (PostgreSQL: one bulk statement, a statement-level trigger) wakes waiters too.
  store_->wait_for_change(std::chrono::steady_clock::now());
  std::thread batcher([&] {
    std::this_thread::sleep_for(20ms);
    other->add_batch(std::vector<NewTask>(50, memo()));
  });
  EXPECT_TRUE(store_->wait_for_change(std::chrono::steady_clock::now() + 60s));
  batcher.join();
}

// Invariant: this connection's own single-statement writes count as changes too (the dispatcher
// caches the next due time until a change; a regression left recovered tasks waiting forever),
// and interrupt_wait() ends a wait at once.
TEST_P(StoreTest, WaitForChangeSeesOwnWritesAndInterrupts) {
  store_->add(memo());
  store_->claim_due({"dead", 1, -1000ms});
  store_->wait_for_change(std::chrono::steady_clock::now());
  EXPECT_EQ(store_->recover_expired(), 1u);
  EXPECT_TRUE(store_->wait_for_change(std::chrono::steady_clock::now()));
  std::thread t([&] {
    std::this_thread::sleep_for(20ms);
    store_->interrupt_wait();
  });
  EXPECT_TRUE(store_->wait_for_change(std::chrono::steady_clock::now() + 60s));
  t.join();
}

// Invariant (fencing, #16.1): after cancel + retry, the old run's claim can neither renew, nor
// record its outcome, nor let the task be claimed again before it acknowledged its end; the new
// claim gets a new token and is the only one that counts.
TEST_P(StoreTest, FencingTokenSeparatesRunsOfOneTask) {
  auto id = store_->add(memo());
  auto old_run = claim_started("same-owner", 1);
  ASSERT_EQ(old_run.size(), 1u);
  ASSERT_TRUE(store_->cancel(id));
  ASSERT_TRUE(store_->retry(id));
  EXPECT_TRUE(store_->claim_due({"same-owner", 1, 30s}).empty()) << "the cancelled run has not ended yet";
  EXPECT_FALSE(store_->next_due().has_value()) << "next_due must agree with what a claim can take";
  EXPECT_EQ(store_->claims_held({&old_run[0]}), std::vector<bool>{false});
  EXPECT_EQ(store_->renew_leases({&old_run[0]}, 30s), std::vector<bool>{false});
  EXPECT_FALSE(store_->complete(old_run[0], {.ok = true, .result = "old"}, {}));  // acknowledges the end
  auto new_run = claim_started("same-owner", 1);
  ASSERT_EQ(new_run.size(), 1u);
  EXPECT_GT(new_run[0].claim_token, old_run[0].claim_token);
  EXPECT_FALSE(store_->complete(old_run[0], {.ok = true, .result = "old"}, {}));
  EXPECT_TRUE(store_->complete(new_run[0], {.ok = true, .result = "new"}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::done);
  EXPECT_EQ(r->result, "new");
  EXPECT_EQ(r->attempts, 1);
}

// Invariant (#16.1, #16.8): a claim cancelled before its run started does not start, and a
// claimed-but-unstarted task shows no attempt.
TEST_P(StoreTest, CancelledWhileQueuedDoesNotStart) {
  auto a = store_->add(memo());
  auto b = store_->add(memo());
  auto got = store_->claim_due({"r", 2, 30s});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(store_->get(a)->attempts, 0);
  ASSERT_TRUE(store_->cancel(got[0].id));
  EXPECT_EQ(store_->start_runs({&got[0], &got[1]}), (std::vector<bool>{false, true}));
  EXPECT_FALSE(store_->release(got[0], false));  // only clears the lease
  EXPECT_FALSE(store_->get(got[0].id)->lease_owner.has_value());
  EXPECT_EQ(store_->get(got[0].id)->status, TaskStatus::cancelled);
  EXPECT_EQ(store_->get(got[1].id)->attempts, 1);
  (void)b;
}

// Invariant (#16.5): times outside [1970, 2200) and durations over 50 years are refused at every
// store entry, naming the field; a repeating series whose next slot would pass the range ends
// failed with a clear error instead of wrapping around.
TEST_P(StoreTest, TimesOutsideTheRangeAreRefused) {
  auto expect_refused = [](auto f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "accepted: " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  NewTask late = memo();
  late.exec_time = kMaxTime + 1h;
  expect_refused([&] { store_->add(late); }, "exec_time");
  NewTask long_period = memo();
  long_period.repeat_every = kMaxDuration + 1h;
  expect_refused([&] { store_->add(long_period); }, "repeat_every");
  auto id = store_->add(memo());
  expect_refused([&] { store_->extend(id, kMaxDuration); store_->extend(id, kMaxDuration); store_->extend(id, kMaxDuration);
                       store_->extend(id, kMaxDuration); store_->extend(id, kMaxDuration); }, "exec_time");
  expect_refused([&] { store_->reschedule(id, kMaxTime); }, "exec_time");
  EXPECT_EQ(store_->stats().waiting, 1);
  // A series whose next slot lies past the range (e.g. --every 110000d written by another
  // program after its first run) ends there, failed, instead of wrapping around.
  NewTask tick = memo();
  tick.repeat_every = 1h;
  auto series = store_->add(tick);
  sql("UPDATE tasks SET repeat_every = CAST(110000 AS BIGINT) * 86400000 WHERE id = " + std::to_string(series));
  auto c = claim_started("r", 10);
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(store_->complete(c[0], {.ok = true}, {}));
  auto r = store_->get(series);
  EXPECT_EQ(r->status, TaskStatus::failed);
  EXPECT_NE(r->last_error.value_or("").find("2199"), std::string::npos);
}

// Invariant (#16.6): a failed run of a repeating task retried with backoff keeps its planned
// slot: the retried run reports the slot, and the series continues on the original grid.
TEST_P(StoreTest, RetryKeepsTheGrid) {
  NewTask t = memo();
  t.repeat_every = 10s;
  t.max_attempts = 2;
  auto slot = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() - 3s);
  t.exec_time = slot;
  auto id = store_->add(t);
  RetryPolicy soon{.base = 1ms, .max = 1ms, .jitter = 0};
  auto c1 = claim_started("r", 1);
  ASSERT_EQ(c1.size(), 1u);
  ASSERT_TRUE(store_->complete(c1[0], {.ok = false, .error = "boom"}, soon));
  auto waiting = store_->get(id);
  EXPECT_EQ(waiting->planned_time, slot);
  ASSERT_TRUE(eventually([&] { return store_->next_due() <= std::chrono::system_clock::now(); }));
  auto c2 = claim_started("r", 1);
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_EQ(c2[0].exec_time, slot) << "the retried run reports its planned slot";
  EXPECT_EQ(c2[0].attempts, 2);
  ASSERT_TRUE(store_->complete(c2[0], {.ok = true}, soon));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, slot + 10s) << "the grid must not drift";
  EXPECT_FALSE(r->planned_time);
}

// Invariant (#16.7): the latest upsert wins over a running run's bookkeeping: a payload changed
// during the run runs (same time), and a failing run's retry does not overwrite the upserted
// time.
TEST_P(StoreTest, UpsertDuringARunWins) {
  NewTask t = memo();
  t.unique_key = "k";
  t.max_attempts = 3;
  auto id = store_->add(t);
  auto c = claim_started("r", 1);
  ASSERT_EQ(c.size(), 1u);
  t.payload = R"({"v":2})";
  t.exec_time = c[0].exec_time;  // same time, new payload
  ASSERT_EQ(store_->add(t), id);
  ASSERT_TRUE(store_->complete(c[0], {.ok = true, .result = "v1"}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting) << "v2 must still run";
  EXPECT_EQ(r->payload, R"({"v":2})");
  auto c2 = claim_started("r", 1);
  ASSERT_EQ(c2.size(), 1u);
  EXPECT_EQ(c2[0].payload, R"({"v":2})");
  auto later = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() + 1h);
  t.exec_time = later;
  ASSERT_EQ(store_->add(t), id);
  ASSERT_TRUE(store_->complete(c2[0], {.ok = false, .error = "boom"}, RetryPolicy{.base = 0ms, .max = 0ms, .jitter = 0}));
  r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->exec_time, later) << "the retry's backoff must not overwrite the upserted time";
  EXPECT_EQ(r->attempts, 0);
}

// Invariant (reports): unset report_on reports every run of a one-shot task and only failed
// runs of a repeating one; failure reports failures only; never reports nothing.
TEST_P(StoreTest, ReportOnChoosesWhichRunsReport) {
  auto run_once = [&](NewTask t, bool ok) {
    auto id = store_->add(t);
    store_->reschedule(id, std::chrono::system_clock::now() - 1s);
    auto c = claim_started("r", 1);
    EXPECT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0].report_on, t.report_on);
    EXPECT_TRUE(store_->complete(c[0], {.ok = ok, .error = ok ? "" : "boom"}, {}));
    auto n = store_->reports(true, 100).size();
    std::vector<std::int64_t> ids;
    for (auto& r : store_->reports(true, 100)) ids.push_back(r.id);
    store_->ack_reports(ids);
    store_->cancel(id);
    for (auto& r : store_->reports(true, 100)) ids.push_back(r.id);
    store_->ack_reports(ids);
    return n;
  };
  NewTask one = memo();
  EXPECT_EQ(run_once(one, true), 1u);
  NewTask rep = memo();
  rep.repeat_every = 1h;
  EXPECT_EQ(run_once(rep, true), 0u);
  EXPECT_EQ(run_once(rep, false), 1u);
  rep.report_on = ReportOn::always;
  EXPECT_EQ(run_once(rep, true), 1u);
  one.report_on = ReportOn::failure;
  EXPECT_EQ(run_once(one, true), 0u);
  EXPECT_EQ(run_once(one, false), 1u);
  one.report_on = ReportOn::never;
  EXPECT_EQ(run_once(one, false), 0u);
  EXPECT_EQ(store_->get(store_->add(one))->report_on, ReportOn::never);
}

// Invariant (#11.5): a run stopped by its dispatcher's shutdown goes back to waiting with its
// attempt uncounted; it is not failed and not reported.
TEST_P(StoreTest, InterruptedRunGoesBackUncounted) {
  auto id = store_->add(memo());
  auto c = claim_started("r", 1);
  ASSERT_TRUE(store_->complete(c[0], {.ok = false, .error = "exec: stopped", .interrupted = true}, {}));
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_EQ(r->attempts, 0);
  EXPECT_TRUE(store_->reports(true, 10).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreTest, ::testing::Values(test::Backend::sqlite, test::Backend::postgres),
                         test::backend_name);

}  // namespace
}  // namespace taskpool
