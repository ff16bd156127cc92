// tests/schedule_store_test.cpp — schedules people write, in the durable table (#14): cron tasks,
// debounce with a maximum wait, fair claims, handler caps, and the dispatcher's per-handler
// limits. Only TaskStore calls (and open_again() for a second connection), so the suite can run
// on every backend.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/process_util.hpp"
#include "common/store_fixture.hpp"
#include "common/test_util.hpp"
#include "store/task_rules.hpp"
#include "taskpool/taskpool.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace taskpool {
namespace {

class ScheduleStoreTest : public test::BackendStoreFixture {
 protected:
  // Another connection to the same database (another process's view after a fork).
  std::unique_ptr<TaskStore> open_again() { return open_db(); }

  NewTask task(std::string creator, std::string handler = "memo") {
    NewTask t;
    t.creator_id = std::move(creator);
    t.group_id = "g-" + t.creator_id;
    t.exec_task = std::move(handler);
    return t;
  }
  // Claims and starts (the dispatcher's two steps before a run).
  std::vector<TaskRecord> claim_started(const ClaimRequest& req) {
    auto got = store_->claim_due(req);
    std::vector<TaskRecord*> ptrs;
    for (auto& r : got) ptrs.push_back(&r);
    for (bool b : store_->start_runs(ptrs)) EXPECT_TRUE(b);
    return got;
  }
  static wall_time ms_floor(wall_time t) { return std::chrono::time_point_cast<std::chrono::milliseconds>(t); }

  // A debounced task (1 h, at most 1 h 20 ms after the first arm) armed once.
  struct Window {
    NewTask t;
    std::int64_t id;
    wall_time start;  // the window's first arm
  };
  Window arm(const std::string& key) {
    NewTask t = task("u1");
    t.unique_key = key;
    t.debounce = 1h;
    t.max_wait = 1h + 20ms;
    auto id = store_->add(t);
    return {t, id, store_->get(id)->debounce_start.value()};
  }
  // Re-arms w `n` times through `s`; 0 when every arm hit the same task, kept its window and its
  // deadline within first arm + max_wait, else the number of arms that did not.
  static int rearm(TaskStore& s, const Window& w, int n) {
    int bad = 0;
    for (int k = 0; k < n; ++k) {
      auto id = s.add(w.t);
      auto r = s.get(w.id);
      if (id != w.id || !r || r->debounce_start != w.start || r->exec_time > w.start + *w.t.max_wait) ++bad;
    }
    return bad;
  }
};

// Invariant: a cron task without exec_time is first due at its schedule's next instant after
// now; a run moves it to the schedule's next instant after max(planned, now): one catch-up for
// all the missed instants, never a burst.
TEST_P(ScheduleStoreTest, CronTaskRunsAtNextInstantAndCatchesUpOnce) {
  NewTask t = task("u1");
  t.cron = "* * * * *";  // every minute
  auto before = std::chrono::system_clock::now();
  auto id = store_->add(t);
  auto r = store_->get(id);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cron, "* * * * *");
  EXPECT_GT(r->exec_time, before);
  EXPECT_LE(r->exec_time, before + 60s);
  EXPECT_EQ(r->exec_time, std::chrono::floor<std::chrono::minutes>(r->exec_time));
  EXPECT_EQ(store_->next_due(), r->exec_time);

  // Missed ten minutes of instants: the run is due now, and its next run is the first instant
  // after now, not the missed ones.
  ASSERT_TRUE(store_->reschedule(id, std::chrono::floor<std::chrono::minutes>(before) - 10min));
  auto c = claim_started({"r", 1, 30s, Fairness::none, {}});
  ASSERT_EQ(c.size(), 1u);
  auto done_at = std::chrono::system_clock::now();
  ASSERT_TRUE(store_->complete(c[0], {.ok = true, .result = "ok"}, {}));
  r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::waiting);
  EXPECT_GT(r->exec_time, done_at - 1s);
  EXPECT_LE(r->exec_time, done_at + 60s);
  EXPECT_EQ(r->exec_time, store::next_occurrence(*r, c[0].exec_time, r->exec_time - 1ms));
  EXPECT_EQ(r->exec_time, std::chrono::floor<std::chrono::minutes>(r->exec_time));
  // The report default of a repeating task: failures only.
  EXPECT_TRUE(store_->reports(true, 10).empty());
}

// Invariant: bad schedules are refused with one line naming the field, and nothing is stored.
TEST_P(ScheduleStoreTest, BadSchedulesAreRefused) {
  auto refused = [&](NewTask t, const std::string& field) {
    try {
      store_->add(t);
      ADD_FAILURE() << "accepted a task with a bad " << field;
    } catch (const std::invalid_argument& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(field), std::string::npos) << what;
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    }
  };
  struct Case {
    std::function<void(NewTask&)> set;
    const char* field;  // named in the message
  };
  const Case cases[] = {
      {[](NewTask& t) { t.cron = "61 * * * *"; }, "cron"},
      {[](NewTask& t) { t.cron = "* * * * *", t.tz = "No/Such_Zone"; }, "No/Such_Zone"},
      {[](NewTask& t) { t.cron = "* * * * *", t.repeat_every = 1min; }, "repeat_every"},
      {[](NewTask& t) { t.tz = "UTC"; }, "tz"},
      {[](NewTask& t) { t.debounce = 1min; }, "unique_key"},
      {[](NewTask& t) { t.unique_key = "k", t.debounce = 1min, t.max_wait = 30s; }, "max_wait"},
      {[](NewTask& t) { t.unique_key = "k", t.max_wait = 1min; }, "max_wait"},
  };
  for (const Case& c : cases) {
    NewTask t = task("u1");
    c.set(t);
    refused(t, c.field);
  }
  EXPECT_EQ(store_->stats().waiting, 0);
}

// Invariant: each re-arm moves the deadline to now + debounce but never past first arm +
// max_wait; the window's first arm stays; a run ends the window and the next arm opens a new one;
// an arm during a run opens a new window that the run's end keeps.
TEST_P(ScheduleStoreTest, DebounceReArmsWithinMaxWait) {
  NewTask t = task("u1");
  t.unique_key = "img:u1";
  t.debounce = 1h;
  t.max_wait = 1h + 50ms;
  auto id = store_->add(t);
  auto first = store_->get(id);
  ASSERT_TRUE(first->debounce_start);
  EXPECT_EQ(first->exec_time, *first->debounce_start + 1h);
  EXPECT_EQ(first->debounce, 1h);
  EXPECT_EQ(first->max_wait, 1h + 50ms);
  std::this_thread::sleep_for(100ms);  // now + debounce is past first arm + max_wait
  EXPECT_EQ(store_->add(t), id);
  auto second = store_->get(id);
  EXPECT_EQ(second->debounce_start, first->debounce_start);
  EXPECT_EQ(second->exec_time, *first->debounce_start + 1h + 50ms);

  // No max_wait: each arm moves the deadline to now + debounce.
  t.max_wait.reset();
  EXPECT_EQ(store_->add(t), id);
  auto third = store_->get(id);
  EXPECT_GE(third->exec_time, second->exec_time);
  EXPECT_EQ(third->debounce_start, first->debounce_start);
  EXPECT_GT(third->exec_time, *first->debounce_start + 1h + 50ms);

  // Run it: an arm during the run opens a new window, which the run's end keeps.
  t.max_wait = 2h;
  ASSERT_TRUE(store_->reschedule(id, std::chrono::system_clock::now() - 1s));
  auto c = claim_started({"r", 1, 30s});
  ASSERT_EQ(c.size(), 1u);
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(store_->add(t), id);
  auto during = store_->get(id);
  EXPECT_EQ(during->status, TaskStatus::running);
  ASSERT_TRUE(during->debounce_start);
  EXPECT_GT(*during->debounce_start, *first->debounce_start);
  EXPECT_EQ(during->exec_time, *during->debounce_start + 1h);
  ASSERT_TRUE(store_->complete(c[0], {.ok = true, .result = "ok"}, {}));
  auto after = store_->get(id);
  EXPECT_EQ(after->status, TaskStatus::waiting);
  EXPECT_EQ(after->debounce_start, during->debounce_start);
  EXPECT_EQ(after->exec_time, during->exec_time);

  // Run it to the end: the next arm is a new task with a new window.
  ASSERT_TRUE(store_->reschedule(id, std::chrono::system_clock::now() - 1s));
  c = claim_started({"r", 1, 30s});
  ASSERT_EQ(c.size(), 1u);
  ASSERT_TRUE(store_->complete(c[0], {.ok = true, .result = "ok"}, {}));
  EXPECT_EQ(store_->get(id)->status, TaskStatus::done);
  auto next = store_->add(t);
  EXPECT_NE(next, id);
  auto fresh = store_->get(next);
  EXPECT_GE(*fresh->debounce_start, *during->debounce_start);
  EXPECT_EQ(fresh->exec_time, *fresh->debounce_start + 1h);
}

// Invariant: under concurrent re-arms from many connections, there is one live task, its
// window's first arm is the first add's, and its deadline never passes first arm + max_wait.
TEST_P(ScheduleStoreTest, DebounceRaceAcrossThreads) {
  const Window w = arm("k");
  std::vector<std::unique_ptr<TaskStore>> conns;
  for (int i = 0; i < 4; ++i) conns.push_back(open_again());
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 4; ++i) ts.emplace_back([&, i] { bad += rearm(*conns[static_cast<std::size_t>(i)], w, 100); });
  for (auto& th : ts) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(store_->stats().waiting, 1);
  EXPECT_EQ(store_->get(w.id)->exec_time, w.start + w.t.max_wait.value());  // 400 arms took longer than 20 ms
}

// Invariant: the same across processes: each child re-arms through its own connection and checks
// after each arm that the deadline is within first arm + max_wait; one live task remains.
TEST_P(ScheduleStoreTest, DebounceRaceAcrossProcesses) {
  const Window w = arm("proc");
  for (int status : test::run_children(4, [&](int) { return rearm(*open_again(), w, 50); }))
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
  EXPECT_EQ(store_->stats().waiting, 1);
  EXPECT_LE(store_->get(w.id)->exec_time, w.start + w.t.max_wait.value());
}

// Invariant (fairness): one creator with 50k due tasks and ten creators with one each (due
// later than the whole backlog): with creator fairness each single task is claimed within the
// first two batches; with group fairness the same by group; with none, in exec_time order.
TEST_P(ScheduleStoreTest, FairClaimsServeEveryCreatorWithinTwoBatches) {
  const auto now = ms_floor(std::chrono::system_clock::now());
  std::vector<NewTask> big;
  const int n = static_cast<int>(50'000 * std::min(1.0, test::stress_scale()));
  for (int i = 0; i < n; ++i) {
    NewTask t = task("big");
    t.exec_time = now - 1h + std::chrono::milliseconds(i);
    big.push_back(t);
  }
  store_->add_batch(big);
  std::set<std::int64_t> singles;
  for (int i = 0; i < 10; ++i) {
    NewTask t = task("solo" + std::to_string(i));
    t.exec_time = now - 1s;
    singles.insert(store_->add(t));
  }
  for (Fairness f : {Fairness::creator, Fairness::group}) {
    std::set<std::int64_t> left = singles;
    for (int batch = 0; batch < 2; ++batch)
      for (auto& r : store_->claim_due({"r", 8, 30s, f, {}})) left.erase(r.id);
    EXPECT_TRUE(left.empty()) << left.size() << " single tasks not claimed in two batches (fairness "
                              << (f == Fairness::group ? "group" : "creator") << ")";
    // Give them back for the next round.
    for (auto id : singles) {
      auto r = store_->get(id);
      if (r->status == TaskStatus::running) {
        ASSERT_TRUE(store_->release(*r, false));
      }
    }
  }
  // With none, the backlog (earlier exec_time) goes first.
  for (auto& r : store_->claim_due({"r", 8, 30s, Fairness::none, {}})) EXPECT_EQ(singles.count(r.id), 0u);
}

// Invariant: creators whose tasks are all in the future cost a claim probes (misses), but the
// cursor moves past every visited creator: with W creators holding waiting tasks, a due task of
// any creator is claimed within ceil(W / (limit + 32)) + 1 claims, however long the backlog
// ahead of it in exec_time order.
TEST_P(ScheduleStoreTest, FairClaimsSweepPastCreatorsWithOnlyFutureTasks) {
  const auto now = ms_floor(std::chrono::system_clock::now());
  std::vector<NewTask> ts;
  for (int i = 0; i < 3000; ++i) {
    NewTask t = task("aaa");
    t.exec_time = now - 1h + std::chrono::milliseconds(i);
    ts.push_back(t);
  }
  for (int i = 0; i < 600; ++i) {
    NewTask t = task("future" + std::to_string(1000 + i));
    t.exec_time = now + 1h;
    ts.push_back(t);
  }
  store_->add_batch(ts);
  std::set<std::int64_t> late;
  for (const char* who : {"zz1", "zz2"}) {
    NewTask t = task(who);
    t.exec_time = now - 1s;
    late.insert(store_->add(t));
  }
  const std::size_t limit = 8, claims = (603 + limit + 31) / (limit + 32) + 1;
  for (std::size_t i = 0; i < claims && !late.empty(); ++i)
    for (auto& r : store_->claim_due({"r", limit, 30s, Fairness::creator, {}})) late.erase(r.id);
  EXPECT_TRUE(late.empty()) << late.size() << " due tasks not claimed within " << claims << " claims";
}

// Invariant: fairness alternates between creators within a level, never across levels: a
// higher level's tasks go first; and a creator's tasks come earliest first.
TEST_P(ScheduleStoreTest, FairOrderAlternatesWithinALevel) {
  const auto now = ms_floor(std::chrono::system_clock::now());
  for (int i = 0; i < 3; ++i) {
    for (const char* who : {"a", "b"}) {
      NewTask t = task(who);
      t.exec_time = now - 1min + std::chrono::seconds(i);
      store_->add(t);
    }
  }
  NewTask urgent = task("c");
  urgent.task_level = 9;
  urgent.exec_time = now - 1s;
  auto urgent_id = store_->add(urgent);
  auto got = store_->claim_due({"r", 7, 30s});
  ASSERT_EQ(got.size(), 7u);
  EXPECT_EQ(got[0].id, urgent_id);
  std::string order;
  for (std::size_t i = 1; i < got.size(); ++i) order += got[i].creator_id;
  EXPECT_TRUE(order == "ababab" || order == "bababa") << order;
  for (std::size_t i = 3; i < got.size(); ++i) EXPECT_LE(got[i - 2].exec_time, got[i].exec_time);
}

// Invariant (caps): a handler with free 0 gets no rows, one with free k at most k; other
// handlers fill the batch; with every fairness.
TEST_P(ScheduleStoreTest, HandlerCapsBoundClaims) {
  for (Fairness f : {Fairness::none, Fairness::creator, Fairness::group}) {
    for (int i = 0; i < 20; ++i) {
      store_->add(task("u" + std::to_string(i % 3), "memo"));
      store_->add(task("u" + std::to_string(i % 3), "exec"));
      store_->add(task("u" + std::to_string(i % 3), "other"));
    }
    ClaimRequest req{"r", 30, 30s, f, {{"memo", 0}, {"exec", 3}}};
    auto got = store_->claim_due(req);
    std::map<std::string, int> per;
    for (auto& r : got) ++per[r.handler()];
    EXPECT_EQ(per["memo"], 0);
    EXPECT_EQ(per["exec"], 3);
    EXPECT_EQ(per["other"], 20);
    EXPECT_EQ(got.size(), 23u);
    // Empty the table for the next fairness.
    auto rest = store_->claim_due({"r", 100, 30s});
    for (auto* list : {&got, &rest})
      for (auto& r : *list) store_->cancel(r.id);
  }
}

// Invariant (caps): a spent handler's due backlog ahead of other work does not hide the other
// work: behind 5000 capped rows of the same creator, every other row is claimed, in every order.
TEST_P(ScheduleStoreTest, CapsSeePastASpentBacklog) {
  const auto now = ms_floor(std::chrono::system_clock::now());
  int level = 0;
  for (Fairness f : {Fairness::none, Fairness::creator, Fairness::group}) {
    // Each round one level higher: the rounds before leave only capped memo rows behind.
    ++level;
    std::vector<NewTask> ts;
    for (int i = 0; i < 5000; ++i) {
      NewTask t = task("one", "memo");
      t.exec_time = now - 1h + std::chrono::milliseconds(i);
      t.task_level = level;
      ts.push_back(t);
    }
    for (int i = 0; i < 10; ++i) {
      NewTask t = task(i % 2 ? "one" : "two", "other");
      t.exec_time = now - 1s;
      t.task_level = level;
      ts.push_back(t);
    }
    store_->add_batch(ts);
    auto got = store_->claim_due({"r", 20, 30s, f, {{"memo", 1}}});
    std::map<std::string, int> per;
    for (auto& r : got) ++per[r.handler()];
    EXPECT_EQ(per["memo"], 1);
    EXPECT_EQ(per["other"], 10);
    EXPECT_EQ(got.size(), 11u);
  }
}

// Invariant (limits): a Dispatcher never runs more than N tasks of a limited handler at once
// (counted inside the handler), the limited tasks wait in the table rather than in memory, and
// every task of every handler runs; across pool sizes.
TEST_P(ScheduleStoreTest, DispatcherLimitsConcurrentRunsOfAHandler) {
  for (std::size_t threads : {1u, 4u, 16u}) {
    ThreadPool pool(threads);
    DispatcherOptions o;
    o.poll_interval = 20ms;
    o.limits = {{"lim", 2}};
    Dispatcher d(*store_, pool, o);
    std::atomic<int> now{0}, most{0}, ran_lim{0}, ran_free{0};
    d.handle("lim", [&](const TaskContext&) {
      int v = ++now;
      for (int m = most.load(); v > m && !most.compare_exchange_weak(m, v);) {
      }
      std::this_thread::sleep_for(1ms);
      --now;
      ++ran_lim;
      return std::string("ok");
    });
    d.handle("free", [&](const TaskContext&) {
      ++ran_free;
      return std::string("ok");
    });
    const auto done_before = store_->stats().done;
    std::vector<NewTask> ts;
    for (int i = 0; i < 100; ++i) {
      ts.push_back(task("u" + std::to_string(i % 7), "lim"));
      ts.push_back(task("u" + std::to_string(i % 5), "free"));
    }
    store_->add_batch(ts);
    d.start();
    ASSERT_TRUE(eventually([&] { return ran_lim.load() == 100 && ran_free.load() == 100; }))
        << "threads " << threads << ": lim " << ran_lim.load() << ", free " << ran_free.load();
    d.stop(10s);
    EXPECT_LE(most.load(), 2) << "threads " << threads;
    EXPECT_EQ(store_->stats().done - done_before, 200);
    EXPECT_EQ(store_->stats().waiting, 0);
    store_->prune(0ms);
  }
}

// Invariant (fairness through the Dispatcher): behind one creator's 2000 due tasks, each of ten
// other creators' single tasks (due later) starts within the first two claims, i.e. among the
// first 2 * batch runs; with Fairness::none they start after the backlog.
TEST_P(ScheduleStoreTest, DispatcherFairnessStartsSingleTasksEarly) {
  for (Fairness f : {Fairness::creator, Fairness::none}) {
    const auto now = ms_floor(std::chrono::system_clock::now());
    std::vector<NewTask> ts;
    for (int i = 0; i < 2000; ++i) {
      NewTask t = task("big", "run");
      t.exec_time = now - 1h + std::chrono::milliseconds(i);
      ts.push_back(t);
    }
    for (int i = 0; i < 10; ++i) {
      NewTask t = task("solo" + std::to_string(i), "run");
      t.exec_time = now - 1s;
      ts.push_back(t);
    }
    store_->add_batch(ts);
    ThreadPool pool(2);
    DispatcherOptions o;
    o.poll_interval = 20ms;
    o.batch = 16;
    o.fairness = f;
    Dispatcher d(*store_, pool, o);
    std::mutex mu;
    std::vector<std::string> order;  // creators in the order their runs started
    d.handle("run", [&](const TaskContext& c) {
      std::lock_guard lk(mu);
      order.push_back(c.task.creator_id);
      return std::string();
    });
    d.start();
    ASSERT_TRUE(eventually([&] { return store_->stats().waiting == 0 && d.stats().in_flight == 0; }));
    d.stop(10s);
    std::lock_guard lk(mu);
    ASSERT_EQ(order.size(), 2010u);
    std::size_t last_solo = 0;
    for (std::size_t i = 0; i < order.size(); ++i)
      if (order[i] != "big") last_solo = i;
    if (f == Fairness::creator) EXPECT_LT(last_solo, 2 * o.batch) << "the last single task started as run " << last_solo;
    else EXPECT_GE(last_solo, 2000u);
    store_->prune(0ms);
  }
}

// Invariant: bad dispatcher options are refused naming the option.
TEST_P(ScheduleStoreTest, DispatcherRefusesBadLimits) {
  ThreadPool pool(1);
  DispatcherOptions o;
  o.limits = {{"memo", 0}};
  try {
    Dispatcher d(*store_, pool, o);
    ADD_FAILURE() << "a limit of 0 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("limits"), std::string::npos) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ScheduleStoreTest, ::testing::Values(test::Backend::sqlite, test::Backend::postgres),
                         test::backend_name);

}  // namespace
}  // namespace taskpool
