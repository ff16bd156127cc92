// tests/dispatcher_test.cpp — the Dispatcher running the durable table on a pool.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>

#include "common/store_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/taskpool.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace taskpool {
namespace {

class DispatcherTest : public test::StoreFixture {
 protected:
  NewTask task(std::string handler, std::string payload = "{}") {
    NewTask t;
    t.creator_id = "u1";
    t.group_id = "g1";
    t.exec_task = std::move(handler);
    t.payload = std::move(payload);
    return t;
  }
  bool status_is(std::int64_t id, TaskStatus s) {
    return eventually([&] {
      auto r = store_->get(id);
      return r && r->status == s;
    });
  }
  DispatcherOptions fast() {
    DispatcherOptions o;
    o.poll_interval = 20ms;
    o.retry = RetryPolicy{.base = 0ms, .max = 0ms, .jitter = 0};
    return o;
  }
};

// Invariant: a due one-shot task runs once through its handler; result, report and callback agree.
TEST_F(DispatcherTest, OneShotRunsAndReports) {
  ThreadPool pool(2);
  std::atomic<int> reported{0};
  auto o = fast();
  o.on_report = [&](const TaskRecord&, const RunResult& r) { reported += r.ok ? 1 : 0; };
  Dispatcher d(*store_, pool, o);
  std::atomic<int> runs{0};
  d.handle("memo", [&](const TaskContext& c) {
    ++runs;
    return "sent " + c.task.payload;
  });
  d.start();
  auto id = d.add(task("memo", R"({"text":"hi"})"));
  ASSERT_TRUE(status_is(id, TaskStatus::done));
  EXPECT_EQ(store_->get(id)->result, R"(sent {"text":"hi"})");
  EXPECT_EQ(runs.load(), 1);
  ASSERT_TRUE(eventually([&] { return reported.load() == 1; }));
  auto reps = store_->reports(true, 10);
  ASSERT_EQ(reps.size(), 1u);
  EXPECT_EQ(reps[0].report_user_id, "u1");
  d.stop();
  EXPECT_EQ(d.stats().succeeded, 1u);
}

// Invariant: among due tasks the highest level runs first (one worker: run order = start order).
TEST_F(DispatcherTest, PriorityOrderAmongDueTasks) {
  ThreadPool pool(1);
  std::mutex mu;
  std::vector<int> order;
  Dispatcher d(*store_, pool, fast());
  d.handle("rec", [&](const TaskContext& c) {
    std::lock_guard lk(mu);
    order.push_back(c.task.task_level);
    return "";
  });
  std::vector<NewTask> ts;
  for (int level : {3, 9, 0, 5, 9, 7, 1}) {
    auto t = task("rec");
    t.task_level = level;
    t.exec_time = std::chrono::system_clock::now() - 1s;
    ts.push_back(t);
  }
  store_->add_batch(ts);  // all due before the dispatcher starts
  d.start();
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lk(mu);
    return order.size() == ts.size();
  }));
  d.stop();
  EXPECT_TRUE(std::is_sorted(order.rbegin(), order.rend())) << "levels must run highest first";
}

// Invariant: a repeating task runs once per grid slot, never twice for one slot.
TEST_F(DispatcherTest, RepeatingRunsOncePerSlot) {
  ThreadPool pool(2);
  Dispatcher d(*store_, pool, fast());
  std::mutex mu;
  std::vector<std::int64_t> slots;
  d.handle("tick", [&](const TaskContext& c) {
    std::lock_guard lk(mu);
    slots.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(c.task.exec_time.time_since_epoch()).count());
    return "";
  });
  auto t = task("tick");
  t.repeat_every = 30ms;
  auto first = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  t.exec_time = first;
  d.start();
  d.add(t);
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lk(mu);
    return slots.size() >= 4;
  }));
  d.stop();
  std::lock_guard lk(mu);
  for (std::size_t i = 1; i < slots.size(); ++i) {
    EXPECT_GT(slots[i], slots[i - 1]) << "a slot ran twice";
    EXPECT_EQ((slots[i] - slots[0]) % 30, 0) << "off the grid";
  }
}

// Invariant: failures retry up to max_attempts; an unknown handler fails with a clear error.
TEST_F(DispatcherTest, RetriesAndUnknownHandler) {
  ThreadPool pool(2);
  Dispatcher d(*store_, pool, fast());
  std::atomic<int> calls{0};
  d.handle("flaky", [&](const TaskContext&) -> std::string {
    if (++calls < 3) throw std::runtime_error("not yet");
    return "ok";
  });
  d.start();
  auto t = task("flaky");
  t.max_attempts = 3;
  auto id = d.add(t);
  auto missing = d.add(task("nobody-handles-this"));
  ASSERT_TRUE(status_is(id, TaskStatus::done));
  EXPECT_EQ(store_->get(id)->attempts, 0);
  EXPECT_EQ(calls.load(), 3);
  ASSERT_TRUE(status_is(missing, TaskStatus::failed));
  EXPECT_EQ(store_->get(missing)->last_error, "no handler registered for 'nobody-handles-this'");
  d.stop();
}

// Invariant: rows written by another connection (another process) are picked up by polling.
TEST_F(DispatcherTest, SeesRowsFromOtherConnections) {
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  d.handle("memo", [](const TaskContext&) { return "x"; });
  d.start();
  auto other = open_sqlite_store(path_);
  auto id = other->add(task("memo"));
  EXPECT_TRUE(status_is(id, TaskStatus::done));
  d.stop();
}

// Invariant: a task left running by a dead runner is recovered by a live dispatcher once its
// lease expires, and then runs (regression: the recovery did not refresh the cached due time).
TEST_F(DispatcherTest, RecoversTasksOfDeadRunners) {
  ThreadPool pool(1);
  auto o = fast();
  o.lease = 100ms;
  Dispatcher d(*store_, pool, o);
  d.handle("memo", [](const TaskContext&) { return "x"; });
  d.pause();  // paused from the start, so the dead runner surely claims the task first
  d.start();
  auto other = open_sqlite_store(path_);
  auto id = other->add(task("memo"));
  ASSERT_EQ(other->claim_due("dead-runner", 1, 200ms).size(), 1u);
  d.resume();
  EXPECT_TRUE(status_is(id, TaskStatus::done));
  d.stop();
}

// Invariant: stop() lets running tasks see stop requested after the grace period, and gives
// claimed-but-unstarted tasks back (waiting, attempt not counted).
TEST_F(DispatcherTest, StopReleasesUnstarted) {
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  test::Arrivals started;
  d.handle("long", [&](const TaskContext& c) -> std::string {
    started.arrive();
    while (!c.stop.stop_requested()) std::this_thread::yield();
    throw std::runtime_error("stopped");
  });
  d.start();
  auto a = d.add(task("long"));
  auto b = d.add(task("long"));
  started.wait_for(1);
  ASSERT_TRUE(eventually([&] { return d.stats().in_flight == 2; }));
  d.stop(0ms);
  auto ra = store_->get(a), rb = store_->get(b);
  // Whichever started was stopped (and is retried later); the other was released unrun.
  int released = (ra->status == TaskStatus::waiting && ra->attempts == 0) + (rb->status == TaskStatus::waiting && rb->attempts == 0);
  EXPECT_EQ(released, 1);
  EXPECT_EQ(store_->stats().running, 0);
}

// Invariant: the exec handler records exit code and output, fails on non-zero exit and enforces
// the timeout; bad payloads fail with a message naming the problem.
TEST_F(DispatcherTest, ExecHandler) {
  ThreadPool pool(2);
  Dispatcher d(*store_, pool, fast());
  d.handle("exec", exec_handler());
  d.start();
  auto ok = d.add(task("exec", R"({"argv": ["sh", "-c", "echo hello $GREETING"], "env": {"GREETING": "world"}})"));
  auto bad = d.add(task("exec", R"({"argv": ["sh", "-c", "echo oops; exit 3"]})"));
  auto slow = d.add(task("exec", R"({"argv": ["sleep", "30"], "timeout": "100ms"})"));
  auto wrong = d.add(task("exec", R"({"args": ["x"]})"));
  auto cwd = d.add(task("exec", R"({"argv": ["pwd"], "cwd": "/tmp"})"));
  ASSERT_TRUE(status_is(ok, TaskStatus::done));
  EXPECT_NE(store_->get(ok)->result->find("hello world"), std::string::npos);
  EXPECT_NE(store_->get(ok)->result->find("\"exit_code\":0"), std::string::npos);
  ASSERT_TRUE(status_is(bad, TaskStatus::failed));
  EXPECT_NE(store_->get(bad)->last_error->find("exit code 3"), std::string::npos);
  EXPECT_NE(store_->get(bad)->last_error->find("oops"), std::string::npos);
  ASSERT_TRUE(status_is(slow, TaskStatus::failed));
  EXPECT_NE(store_->get(slow)->last_error->find("timed out"), std::string::npos);
  ASSERT_TRUE(status_is(wrong, TaskStatus::failed));
  EXPECT_NE(store_->get(wrong)->last_error->find("argv"), std::string::npos);
  ASSERT_TRUE(status_is(cwd, TaskStatus::done));
  EXPECT_NE(store_->get(cwd)->result->find("/tmp"), std::string::npos);
  d.stop();
}

TEST(ParseDuration, AcceptsUnitsAndRejectsGarbage) {
  EXPECT_EQ(parse_duration("250ms"), 250ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("2d"), 48h);
  EXPECT_EQ(parse_duration("45"), 45s);
  for (const char* bad : {"", "abc", "5x", "s", "1.5s", "-3s"}) EXPECT_THROW(parse_duration(bad), std::invalid_argument) << bad;
}

}  // namespace
}  // namespace taskpool
