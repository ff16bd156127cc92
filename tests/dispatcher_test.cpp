// tests/dispatcher_test.cpp — the Dispatcher running the durable table on a pool.
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
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
  EXPECT_EQ(store_->get(id)->attempts, 3) << "the runs of the occurrence stay visible (#11.9)";
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
  o.lease = kMinLease;
  Dispatcher d(*store_, pool, o);
  d.handle("memo", [](const TaskContext&) { return "x"; });
  d.pause();  // paused from the start, so the dead runner surely claims the task first
  d.start();
  auto other = open_sqlite_store(path_);
  auto id = other->add(task("memo"));
  ASSERT_EQ(other->claim_due({"dead-runner", 1, 200ms}).size(), 1u);
  d.resume();
  EXPECT_TRUE(status_is(id, TaskStatus::done));
  d.stop();
}

// Invariant (#11.5): stop() lets running tasks see stop requested after the grace period; a run
// that fails because of it goes back to waiting with its attempt uncounted (a redeploy loses
// nothing), and claimed-but-unstarted tasks are given back unrun.
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
  for (auto id : {a, b}) {
    auto r = store_->get(id);
    EXPECT_EQ(r->status, TaskStatus::waiting) << id;
    EXPECT_EQ(r->attempts, 0) << id;
    EXPECT_FALSE(r->lease_owner) << id;
  }
  EXPECT_EQ(store_->stats().running, 0);
  EXPECT_TRUE(store_->reports(true, 10).empty());
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

// Invariant (#11.10): a lease below the floor is refused, naming the option.
TEST_F(DispatcherTest, LeaseHasAFloor) {
  ThreadPool pool(1);
  auto o = fast();
  o.lease = 1ms;
  try {
    Dispatcher d(*store_, pool, o);
    ADD_FAILURE() << "a 1 ms lease was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("lease"), std::string::npos) << e.what();
  }
}

// Invariant (#16.1): cancelling a running task (from another connection) stop-requests its run
// well before the next lease renewal (lease/3 = 10 s here; the wait is bounded at 5 s), and the
// run's outcome is not recorded over the cancellation.
TEST_F(DispatcherTest, CancelReachesTheRunningRun) {
  ThreadPool pool(2);
  Dispatcher d(*store_, pool, fast());
  test::Arrivals started, stopped;
  d.handle("long", [&](const TaskContext& c) -> std::string {
    started.arrive();
    while (!c.stop.stop_requested()) std::this_thread::sleep_for(1ms);
    stopped.arrive();
    return "finished anyway";
  });
  d.start();
  auto id = d.add(task("long"));
  started.wait_for(1);
  auto other = open_sqlite_store(path_);
  ASSERT_TRUE(other->cancel(id));
  std::atomic<bool> seen{false};
  std::thread watcher([&] {
    stopped.wait_for(1);
    seen = true;
  });
  bool in_time = eventually([&] { return seen.load(); }, std::chrono::seconds(5));
  EXPECT_TRUE(in_time) << "the cancel did not reach the run within 5 s";
  if (!in_time) d.stop(0ms);  // lets the watcher finish
  watcher.join();
  d.stop();
  auto r = store_->get(id);
  EXPECT_EQ(r->status, TaskStatus::cancelled);
  EXPECT_NE(r->result, "finished anyway");
  EXPECT_FALSE(r->lease_owner) << "the ended run acknowledged its end";
}

// Invariant (#16.1): cancel + retry while a run is ending never makes two runs of one task
// overlap, even on the same dispatcher (fencing token; in-flight state keyed by claim), and the
// outcome recorded is the new run's.
TEST_F(DispatcherTest, CancelAndRetryNeverOverlap) {
  ThreadPool pool(4);
  Dispatcher d(*store_, pool, fast());
  std::atomic<int> running{0}, max_running{0}, runs{0};
  test::Arrivals first_started;
  d.handle("slow", [&](const TaskContext& c) -> std::string {
    int now = ++running;
    int prev = max_running.load();
    while (now > prev && !max_running.compare_exchange_weak(prev, now)) {
    }
    int n = ++runs;
    if (n == 1) {
      first_started.arrive();
      while (!c.stop.stop_requested()) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(100ms);  // cleaning up after the stop
    }
    --running;
    return "run " + std::to_string(n);
  });
  d.start();
  auto id = d.add(task("slow"));
  first_started.wait_for(1);
  auto other = open_sqlite_store(path_);
  ASSERT_TRUE(other->cancel(id));
  ASSERT_TRUE(other->retry(id));
  ASSERT_TRUE(status_is(id, TaskStatus::done));
  d.stop();
  EXPECT_EQ(max_running.load(), 1) << "two runs of one task overlapped";
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(store_->get(id)->result, "run 2");
}

// Invariant (#16.8): a dispatcher claims only what can start soon (free workers + prefetch), and
// claimed-but-unstarted tasks show no attempt.
TEST_F(DispatcherTest, ClaimsOnlyWhatCanStartSoon) {
  ThreadPool pool(1);
  auto o = fast();
  o.prefetch = 1;
  Dispatcher d(*store_, pool, o);
  test::Gate gate;
  test::Arrivals started;
  d.handle("block", [&](const TaskContext&) -> std::string {
    started.arrive();
    gate.wait();
    return "";
  });
  std::vector<NewTask> ts(6, task("block"));
  store_->add_batch(ts);
  d.start();
  started.wait_for(1);
  ASSERT_TRUE(eventually([&] { return store_->stats().running == 2; }));
  std::this_thread::sleep_for(100ms);  // a hoarding loop would claim more meanwhile (not an ordering)
  EXPECT_EQ(store_->stats().running, 2);
  EXPECT_LE(d.stats().in_flight, 2u);
  int counted = 0;
  for (auto& r : store_->list({.status = TaskStatus::running})) counted += r.attempts;
  EXPECT_EQ(counted, 1) << "only the started run counts an attempt";
  gate.open();
  ASSERT_TRUE(eventually([&] { return store_->stats().done == 6; }));
  d.stop();
}

// Invariant (#16.3): a group commit that fails (database locked past the busy timeout) keeps the
// outcomes and retries; the task ends done, ran once, and no lease is reported lost.
TEST_F(DispatcherTest, FailedCommitKeepsOutcomes) {
  SqliteOptions quick;
  quick.busy_timeout = 50ms;
  auto store = open_sqlite_store(path_, quick);
  ThreadPool pool(1);
  auto o = fast();
  std::mutex log_mu;
  std::vector<std::string> lines;
  o.log = [&](const std::string& l) {
    std::lock_guard lk(log_mu);
    lines.push_back(l);
  };
  auto logged = [&](const std::string& needle) {
    std::lock_guard lk(log_mu);
    for (auto& l : lines)
      if (l.find(needle) != std::string::npos) return true;
    return false;
  };
  Dispatcher d(*store, pool, o);
  test::Gate gate;
  test::Arrivals started;
  std::atomic<int> runs{0};
  d.handle("job", [&](const TaskContext&) -> std::string {
    ++runs;
    started.arrive();
    gate.wait();
    return "ok";
  });
  d.start();
  auto id = d.add(task("job"));
  started.wait_for(1);
  sqlite3* lock = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &lock), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(lock, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  gate.open();
  EXPECT_TRUE(eventually([&] { return logged("recording 1 outcome(s) failed"); }, std::chrono::seconds(20)));
  sqlite3_exec(lock, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(lock);
  ASSERT_TRUE(eventually([&] { return store_->get(id)->status == TaskStatus::done; }, std::chrono::seconds(20)));
  d.stop();
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(store_->get(id)->result, "ok");
  EXPECT_EQ(d.stats().lost_leases, 0u);
  EXPECT_FALSE(logged("lost its lease"));
  EXPECT_TRUE(logged("after the store recovered"));
}

// The lease owner name of a process on this host, as a dispatcher here would write it.
std::string owner_of(const std::string& host, pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), {});
  std::istringstream in(s.substr(s.rfind(')') + 1));
  std::string field, start;
  for (int i = 3; i <= 22 && (in >> field); ++i)
    if (i == 22) start = field;
  return host + ":" + std::to_string(pid) + ":" + start + ":0badc0de";
}

// Invariant (#11.4): rows held by a dead dispatcher on this host (pid gone) are taken back at
// once when a dispatcher starts, even though their lease has a minute left; (#16.12) rows of a
// live owner on this host are never taken back, even when their lease looks expired (a forward
// jump of the wall clock); an owner we cannot check waits for its lease.
TEST_F(DispatcherTest, RecoveryProvesOwnersDeadOrAlive) {
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  d.handle("memo", [](const TaskContext&) { return "x"; });
  const std::string& me = d.owner();
  std::string host = me.substr(0, me.rfind(':', me.rfind(':', me.rfind(':') - 1) - 1));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  std::string dead_owner = owner_of(host, child);
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  std::string live_owner = owner_of(host, getpid());
  auto dead = store_->add(task("memo"));
  ASSERT_EQ(store_->claim_due({std::string(dead_owner), 1, 60s}).size(), 1u);
  auto live = store_->add(task("memo"));
  ASSERT_EQ(store_->claim_due({std::string(live_owner), 1, -1000ms}).size(), 1u);  // "expired"
  auto unknown = store_->add(task("memo"));
  ASSERT_EQ(store_->claim_due({"some-other-host:1:1:1", 1, 60s}).size(), 1u);
  d.pause();
  d.start();  // recovers synchronously
  EXPECT_EQ(store_->get(dead)->status, TaskStatus::waiting);
  EXPECT_EQ(store_->get(live)->status, TaskStatus::running);
  EXPECT_EQ(store_->get(live)->lease_owner, live_owner);
  EXPECT_EQ(store_->get(unknown)->status, TaskStatus::running);
  d.resume();
  EXPECT_TRUE(status_is(dead, TaskStatus::done));
  d.stop();
}

// Invariant: the log line of a run carries the first line of its output (an exec-style result's
// "output") or error, capped, and never the payload.
TEST_F(DispatcherTest, LogShowsFirstLineNeverPayload) {
  ThreadPool pool(1);
  auto o = fast();
  std::mutex mu;
  std::string all;
  o.log = [&](const std::string& l) {
    std::lock_guard lk(mu);
    all += l + "\n";
  };
  Dispatcher d(*store_, pool, o);
  d.handle("ok", [](const TaskContext&) { return std::string(R"({"exit_code":0,"output":"hello from taskpool\nmore"})"); });
  d.handle("bad", [](const TaskContext&) -> std::string {
    throw std::runtime_error(R"(exec: exit code 3; {"exit_code":3,"output":"\noops\nsecond"})");
  });
  d.start();
  auto a = d.add(task("ok", R"({"secret":"hunter2"})"));
  auto b = d.add(task("bad", R"({"secret":"hunter2"})"));
  ASSERT_TRUE(status_is(a, TaskStatus::done));
  ASSERT_TRUE(status_is(b, TaskStatus::failed));
  d.stop();
  std::lock_guard lk(mu);
  EXPECT_NE(all.find("done in "), std::string::npos) << all;
  EXPECT_NE(all.find(": hello from taskpool\n"), std::string::npos) << all;
  EXPECT_NE(all.find("exec: exit code 3: oops\n"), std::string::npos) << all;
  EXPECT_EQ(all.find("hunter2"), std::string::npos) << all;
}

// Invariant: a dispatcher stopping while a run goes on past a lease period waits for it without
// spinning (a regression: recovery is skipped while stopping, and its stale deadline made the loop
// spin holding its lock, starving the run's completion). Checked by the CPU the process used.
TEST_F(DispatcherTest, StopWaitsWithoutSpinning) {
  ThreadPool pool(1);
  auto o = fast();
  o.lease = kMinLease;
  Dispatcher d(*store_, pool, o);
  test::Gate gate;
  test::Arrivals started;
  d.handle("long", [&](const TaskContext&) -> std::string {
    started.arrive();
    gate.wait();
    return "ok";
  });
  d.start();
  auto id = d.add(task("long"));
  started.wait_for(1);
  std::thread stopper([&] { d.stop(60s); });
  auto cpu = [] {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  };
  const double cpu0 = cpu();
  auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(2500ms);  // past a lease period while stopping (the window measured)
  const double window = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double used = cpu() - cpu0;
  gate.open();
  stopper.join();
  EXPECT_LT(used, window / 2) << "the process used " << used << " s of CPU in " << window << " s while stopping";
  EXPECT_EQ(store_->get(id)->status, TaskStatus::done);
}

}  // namespace
}  // namespace taskpool
