// tests/scheduler_test.cpp — timed work (Scheduler) on a fake clock: no sleeps, no timing asserts.
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace taskpool {
namespace {

SchedulerOptions on(ManualClock& c) {
  SchedulerOptions o;
  o.clock = &c;
  return o;
}

// Waits until the timer thread has processed everything due at the clock's current time: a probe
// due now is launched in the same pass as (or after) every other due timer.
void settle(Scheduler& s) { s.schedule_after(0s, [] {}).future().get(); }

class SchedTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, SchedTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

// Invariant: a timer fires only once the clock reaches its deadline, with its value.
TEST_P(SchedTest, FiresAtDeadline) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  auto t = s.schedule_after(10s, [](int x) { return x * 2; }, 21);
  EXPECT_TRUE(t.active());
  clock.advance(9s);
  settle(s);
  EXPECT_FALSE(t.future().ready());
  EXPECT_EQ(t.next_run(), clock.now() + 1s);
  clock.advance(1s);
  EXPECT_EQ(t.future().get(), 42);
  EXPECT_FALSE(t.active());
  EXPECT_FALSE(t.next_run().has_value());
}

// Invariant: timers run in deadline order, FIFO among equal deadlines (one worker, so run order is
// launch order).
TEST(Scheduler, ManyTimersRunInDeadlineOrder) {
  ThreadPool pool(1);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::mutex mu;
  std::vector<std::pair<long, int>> order;
  std::mt19937 rng(3);
  std::vector<Scheduled<void>> ts;
  for (int i = 0; i < 2000; ++i) {
    long d = static_cast<long>(rng() % 100);
    ts.push_back(s.schedule_after(std::chrono::seconds(d), [&, d, i] {
      std::lock_guard lk(mu);
      order.emplace_back(d, i);
    }));
  }
  clock.advance(100s);
  for (auto& t : ts) t.future().get();
  ASSERT_EQ(order.size(), 2000u);
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
}

// Invariant: cancel() before firing: true, never runs, future cancelled; later cancel is false.
TEST_P(SchedTest, CancelPending) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::atomic<bool> ran{false};
  auto t = s.schedule_after(5s, [&] { ran = true; });
  EXPECT_TRUE(t.cancel());
  EXPECT_FALSE(t.cancel());
  EXPECT_FALSE(t.active());
  clock.advance(10s);
  settle(s);
  pool.wait_idle();
  EXPECT_FALSE(ran.load());
  EXPECT_THROW(t.future().get(), Cancelled);
  EXPECT_EQ(s.pending(), 0u);
}

// Invariant: cancel racing the firing: the task runs at most once, and cancel() returns true
// exactly when it did not run.
TEST_P(SchedTest, CancelRacesFire) {
  ThreadPool pool(GetParam());
  Scheduler s(pool);  // real clock: the race is the point
  const int n = static_cast<int>(test::scaled(3000));
  std::vector<std::shared_ptr<std::atomic<int>>> runs;
  std::vector<Scheduled<void>> ts;
  for (int i = 0; i < n; ++i) {
    auto r = std::make_shared<std::atomic<int>>(0);
    runs.push_back(r);
    ts.push_back(s.schedule_after(std::chrono::microseconds(i % 50), [r] { r->fetch_add(1); }));
  }
  std::vector<bool> cancelled(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) cancelled[static_cast<std::size_t>(i)] = ts[static_cast<std::size_t>(i)].cancel();
  for (auto& t : ts) t.future().wait();
  pool.wait_idle();
  for (int i = 0; i < n; ++i) {
    auto k = static_cast<std::size_t>(i);
    ASSERT_EQ(runs[k]->load(), cancelled[k] ? 0 : 1) << i;
    ASSERT_EQ(ts[k].future().cancelled(), cancelled[k]);
  }
}

// Invariant: extend() and reschedule() move the deadline (a sliding timeout).
TEST_P(SchedTest, ExtendAndReschedule) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  auto t = s.schedule_after(10s, [] { return 1; });
  EXPECT_TRUE(t.extend(5s));
  clock.advance(10s);
  settle(s);
  EXPECT_FALSE(t.future().ready());
  clock.advance(5s);
  EXPECT_EQ(t.future().get(), 1);
  EXPECT_FALSE(t.extend(5s));  // already fired

  auto u = s.schedule_after(100s, [] { return 2; });
  EXPECT_TRUE(u.reschedule(clock.now() + 1s));
  clock.advance(1s);
  EXPECT_EQ(u.future().get(), 2);
}

// Invariant: debounce keeps one pending task per key; re-arming replaces the deadline and the
// task; only the last one runs (the image-search idle timeout).
TEST_P(SchedTest, DebounceReplaces) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::atomic<int> which{0};
  auto first = s.debounce("user:1", 60s, [&] { which = 1; });
  clock.advance(30s);
  auto second = s.debounce("user:1", 60s, [&] { which = 2; });
  EXPECT_TRUE(first.future().cancelled());
  EXPECT_EQ(s.pending(), 1u);
  auto other = s.debounce("user:2", 10s, [] {});
  clock.advance(59s);
  settle(s);
  other.future().get();
  EXPECT_FALSE(second.future().ready());
  clock.advance(1s);
  second.future().get();
  EXPECT_EQ(which.load(), 2);
  // The key is free again: a new debounce schedules a fresh task.
  auto third = s.debounce("user:1", 1s, [&] { which = 3; });
  clock.advance(1s);
  third.future().get();
  EXPECT_EQ(which.load(), 3);
}

// Invariant: debounce binds arguments like every other single-task form.
TEST_P(SchedTest, DebounceBindsArguments) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  auto t = s.debounce("k", 5s, [](int x, const std::string& y) { return x + static_cast<int>(y.size()); }, 40, std::string("ab"));
  clock.advance(5s);
  EXPECT_EQ(t.future().get(), 42);
}

// Invariant: debounce/extend from many threads at once leave exactly one pending task per key,
// and every replaced task is cancelled (never run).
TEST_P(SchedTest, DebounceRacesFromManyThreads) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::atomic<int> ran{0};
  std::vector<std::thread> ts;
  std::mutex mu;
  std::vector<Scheduled<void>> all;
  for (int t = 0; t < 4; ++t) ts.emplace_back([&, t] {
      for (int i = 0; i < static_cast<int>(test::scaled(2000)); ++i) {
        auto h = s.debounce("k" + std::to_string(i % 3), 60s, [&] { ++ran; });
        h.extend(1s);
        if (t == 0 && i % 10 == 0) h.extend(2s);
        std::lock_guard lk(mu);
        all.push_back(h);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.pending(), 3u);
  clock.advance(120s);
  for (auto& h : all) h.future().wait();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), 3);
  int live = 0;
  for (auto& h : all) live += h.future().cancelled() ? 0 : 1;
  EXPECT_EQ(live, 3);
}

// Invariant: fixed rate stays on its grid (no drift); missed grid points coalesce into one run.
TEST(Scheduler, FixedRateNoDriftAndCoalescing) {
  ThreadPool pool(1);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  const auto t0 = clock.now();
  std::mutex mu;
  std::vector<std::chrono::seconds> at;  // run times relative to t0
  auto series = s.schedule_every(10s, [&] {
    std::lock_guard lk(mu);
    at.push_back(std::chrono::duration_cast<std::chrono::seconds>(clock.now() - t0));
  });
  auto runs = [&] {
    std::lock_guard lk(mu);
    return at.size();
  };
  auto rearmed = [&](std::size_t n) { return eventually([&] { return runs() == n && series.next_run().has_value(); }); };
  clock.advance(10s);  // t=10: on grid
  ASSERT_TRUE(rearmed(1));
  EXPECT_EQ(series.next_run(), t0 + 20s);
  clock.advance(13s);  // t=23: late by 3 s; the grid does not move
  ASSERT_TRUE(rearmed(2));
  EXPECT_EQ(series.next_run(), t0 + 30s);
  clock.advance(32s);  // t=55: 30, 40, 50 missed -> one run now
  ASSERT_TRUE(rearmed(3));
  EXPECT_EQ(series.next_run(), t0 + 60s);  // back on the grid
  clock.advance(5s);  // t=60
  ASSERT_TRUE(rearmed(4));
  EXPECT_EQ(at, (std::vector<std::chrono::seconds>{10s, 23s, 55s, 60s}));
  EXPECT_TRUE(series.cancel());
  EXPECT_THROW(series.future().get(), Cancelled);
  EXPECT_FALSE(series.active());
}

// Invariant: fixed delay plans the next run `interval` after the previous one finished.
TEST(Scheduler, FixedDelay) {
  ThreadPool pool(1);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::atomic<int> n{0};
  Every e;
  e.mode = Every::fixed_delay;
  e.first_run = clock.now() + 1s;
  auto series = s.schedule_every(10s, [&] { ++n; }, e);
  clock.advance(1s);
  ASSERT_TRUE(eventually([&] { return n == 1 && series.next_run().has_value(); }));
  EXPECT_EQ(series.next_run(), clock.now() + 10s);
  clock.advance(10s);
  ASSERT_TRUE(eventually([&] { return n == 2; }));
}

// Invariant: a throwing periodic run ends the series and its exception reaches future();
// with stop_on_error = false the series goes on and on_error sees each exception.
TEST(Scheduler, PeriodicErrors) {
  ThreadPool pool(2);
  ManualClock clock;
  std::atomic<int> reported{0};
  SchedulerOptions o = on(clock);
  o.on_error = [&](std::exception_ptr) { ++reported; };
  Scheduler s(pool, o);
  auto failing = s.schedule_every(1s, [] { throw std::runtime_error("cycle failed"); });
  std::atomic<int> runs{0};
  Every keep;
  keep.stop_on_error = false;
  auto tolerant = s.schedule_every(1s, [&] {
    ++runs;
    throw std::runtime_error("again");
  }, keep);
  clock.advance(1s);
  EXPECT_THROW(failing.future().get(), std::runtime_error);
  EXPECT_FALSE(failing.active());
  ASSERT_TRUE(eventually([&] { return runs == 1 && tolerant.next_run().has_value(); }));
  clock.advance(1s);
  ASSERT_TRUE(eventually([&] { return runs == 2 && reported == 2; }));
  EXPECT_TRUE(tolerant.active());
}

// Invariant: a million pending timers are handled (insert, cancel half, fire the rest).
TEST(Scheduler, MillionTimers) {
  ThreadPool pool(2);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  const std::size_t n = test::scaled(1'000'000);
  std::atomic<std::size_t> ran{0};
  std::vector<Scheduled<void>> ts;
  ts.reserve(n);
  for (std::size_t i = 0; i < n; ++i) ts.push_back(s.schedule_after(std::chrono::milliseconds(1 + i % 10'000), [&] { ++ran; }));
  EXPECT_EQ(s.pending(), n);
  std::size_t cancelled = 0;
  for (std::size_t i = 0; i < n; i += 2) cancelled += ts[i].cancel() ? 1 : 0;
  EXPECT_EQ(cancelled, (n + 1) / 2);
  clock.advance(10s);
  for (auto& t : ts) t.future().wait();
  pool.wait_idle();
  EXPECT_EQ(ran.load(), n - cancelled);
}

// Invariant: close() cancels pending timers; scheduling afterwards throws PoolClosed; handles
// outliving the scheduler answer false.
TEST_P(SchedTest, CloseCancelsPending) {
  ThreadPool pool(GetParam());
  ManualClock clock;
  std::vector<Scheduled<int>> ts;
  Scheduled<void> series;
  {
    Scheduler s(pool, on(clock));
    for (int i = 0; i < 100; ++i) ts.push_back(s.schedule_after(1h, [] { return 0; }));
    series = s.schedule_every(1s, [] {});
    s.close();
    EXPECT_THROW(s.schedule_after(1s, [] {}), PoolClosed);
  }
  for (auto& t : ts) {
    EXPECT_TRUE(t.future().cancelled());
    EXPECT_FALSE(t.cancel());
    EXPECT_FALSE(t.extend(1s));
  }
  EXPECT_TRUE(series.future().cancelled());
}

// Invariant: shutting the pool down cancels the scheduler's pending timers.
TEST(Scheduler, PoolShutdownCancelsTimers) {
  ManualClock clock;
  auto pool = std::make_unique<ThreadPool>(2);
  Scheduler s(*pool, on(clock));
  auto t = s.schedule_after(1h, [] {});
  pool->close();
  EXPECT_TRUE(t.future().cancelled());
  EXPECT_THROW(s.schedule_after(1s, [] {}), PoolClosed);
}

// Invariant: schedule_at(system_clock) follows wall-clock steps.
TEST(Scheduler, WallClockTimersFollowClockSteps) {
  ThreadPool pool(1);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  auto reminder = s.schedule_at(clock.system_now() + 2h, [] { return std::string("stand-up"); });
  clock.set_system_time(clock.system_now() + 2h);  // NTP step forward; monotonic time unchanged
  EXPECT_EQ(reminder.future().get(), "stand-up");
  auto later = s.schedule_at(clock.system_now() + 1h, [] { return 1; });
  clock.set_system_time(clock.system_now() - 1h);  // stepped back: now 2 h away
  clock.advance(1h);
  settle(s);
  EXPECT_FALSE(later.future().ready());
  clock.advance(1h);
  EXPECT_EQ(later.future().get(), 1);
}

// Invariant: a due timer runs on the pool, never on the timer thread, even under caller_runs
// with a full queue.
TEST(Scheduler, RunsOnPoolEvenWhenQueueFull) {
  Options o;
  o.min_threads = o.max_threads = 1;
  o.queue_capacity = 1;
  o.when_full = WhenFull::caller_runs;
  ThreadPool pool(o);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  test::Gate gate;
  test::Arrivals started;
  pool.post([&] {
    started.arrive();
    gate.wait();
  });
  started.wait_for(1);
  pool.post([] {});  // queue now full
  auto t = s.schedule_after(1s, [] { return ThreadPool::current_worker_index(); });
  clock.advance(1s);
  EXPECT_TRUE(eventually([&] { return s.pending() == 0; }));
  gate.open();
  EXPECT_EQ(t.future().get(), 0);
}

// Invariant: on the real clock, due timers are fired both by the timer thread and by workers
// between tasks (the pool's DueSource path); whichever pops a timer launches it, so with every
// worker kept busy each timer still runs exactly once, and cancelled ones never run. Delays are
// tiny and nothing about *when* they fire is asserted.
TEST_P(SchedTest, RealClockTimersFireOnceWhileWorkersBusy) {
  ThreadPool pool(GetParam());
  Scheduler s(pool);
  std::atomic<bool> stop{false};
  std::function<void()> load = [&] {
    for (int i = 0; i < 200; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
    if (!stop.load(std::memory_order_relaxed)) pool.post(load);
  };
  for (std::size_t i = 0; i < GetParam(); ++i) pool.post(load);
  constexpr int kTimers = 2000;
  std::vector<std::atomic<int>> runs(kTimers);
  std::vector<Scheduled<void>> ts;
  std::mt19937 rng(5);
  for (int i = 0; i < kTimers; ++i)
    ts.push_back(s.schedule_after(std::chrono::microseconds(rng() % 3000), [&runs, i] { runs[i].fetch_add(1); }));
  std::vector<bool> cancelled(kTimers, false);
  for (int i = 0; i < kTimers; i += 7) cancelled[i] = ts[i].cancel();
  for (int i = 0; i < kTimers; ++i) {
    if (cancelled[i]) {
      EXPECT_THROW(ts[i].future().get(), Cancelled);
    } else {
      ts[i].future().get();
    }
  }
  stop = true;
  pool.wait_idle();
  for (int i = 0; i < kTimers; ++i) EXPECT_EQ(runs[i].load(), cancelled[i] ? 0 : 1) << "timer " << i;
}

}  // namespace
}  // namespace taskpool
