// tests/cron_scheduler_test.cpp — Scheduler::schedule_cron and debounce with max_wait on the
// ManualClock: no sleeps, no timing asserts.
#include <atomic>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace taskpool {
namespace {

// 2026-01-01T00:00:00Z
const std::chrono::system_clock::time_point kNewYear{std::chrono::seconds(1'767'225'600)};

SchedulerOptions on(ManualClock& c) {
  SchedulerOptions o;
  o.clock = &c;
  return o;
}

// Waits until the timer thread has processed everything due at the clock's current time.
void settle(Scheduler& s) { s.schedule_after(0s, [] {}).future().get(); }

// Records the wall time of each run and the most runs in flight at once.
struct Runs {
  std::mutex mu;
  std::vector<std::chrono::system_clock::time_point> at;
  std::atomic<int> in_flight{0}, max_in_flight{0};
  void start(const Clock& c) {
    int now = ++in_flight;
    int seen = max_in_flight.load();
    while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
    }
    std::lock_guard lk(mu);
    at.push_back(c.system_now());
  }
  void end() { --in_flight; }
  // A run that records itself and returns.
  auto task(const Clock& c) {
    return [this, &c] {
      start(c);
      end();
    };
  }
  std::size_t count() {
    std::lock_guard lk(mu);
    return at.size();
  }
};

// Invariant: a cron series runs at each instant of its schedule, and next_run() names the next
// one (on the monotonic time line, as wall instant - wall now from now).
TEST(CronScheduler, RunsAtInstants) {
  ThreadPool pool(2);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  Scheduler s(pool, on(clock));
  Runs runs;
  auto series = s.schedule_cron("*/10 * * * *", "", runs.task(clock));
  EXPECT_TRUE(series.active());
  EXPECT_EQ(series.next_run(), clock.now() + 10min);
  clock.advance(9min);
  settle(s);
  EXPECT_EQ(runs.count(), 0u);
  clock.advance(1min);
  ASSERT_TRUE(eventually([&] { return runs.count() == 1 && series.next_run().has_value(); }));
  EXPECT_EQ(series.next_run(), clock.now() + 10min);
  clock.advance(10min);
  ASSERT_TRUE(eventually([&] { return runs.count() == 2 && series.next_run().has_value(); }));
  EXPECT_EQ(runs.at[0], kNewYear + 10min);
  EXPECT_EQ(runs.at[1], kNewYear + 20min);
  EXPECT_TRUE(series.cancel());
  EXPECT_THROW(series.future().get(), Cancelled);
  clock.advance(1h);
  settle(s);
  pool.wait_idle();
  EXPECT_EQ(runs.count(), 2u);
}

// Invariant: a zone's wall time decides the instants: 09:00 in New York is 14:00 UTC in winter.
TEST(CronScheduler, FollowsZone) {
  ThreadPool pool(1);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  Scheduler s(pool, on(clock));
  auto series = s.schedule_cron(CronSchedule::parse("0 9 * * *", "America/New_York"), [] {});
  EXPECT_EQ(series.next_run(), clock.now() + 14h);
}

// Invariant: runs of one series never overlap; instants that pass while a run is in progress
// give exactly one catch-up run when it ends (never a burst), then the series is back on its
// schedule.
TEST(CronScheduler, LateRunCoalesces) {
  ThreadPool pool(4);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  Scheduler s(pool, on(clock));
  Runs runs;
  std::latch release_first(1);
  std::atomic<bool> first{true};
  auto series = s.schedule_cron("*/10 * * * *", "", [&] {
    runs.start(clock);
    if (first.exchange(false)) release_first.wait();
    runs.end();
  });
  clock.advance(10min);  // 00:10: the first run starts and blocks
  ASSERT_TRUE(eventually([&] { return runs.count() == 1; }));
  clock.advance(35min);  // 00:20, 00:30, 00:40 pass while it runs
  settle(s);
  EXPECT_EQ(runs.count(), 1u);
  release_first.count_down();
  ASSERT_TRUE(eventually([&] { return runs.count() == 2 && series.next_run().has_value(); }));
  EXPECT_EQ(runs.at[1], kNewYear + 45min);              // the one catch-up, at once
  EXPECT_EQ(series.next_run(), clock.now() + 5min);     // then 00:50, on the schedule
  clock.advance(5min);
  ASSERT_TRUE(eventually([&] { return runs.count() == 3 && series.next_run().has_value(); }));
  EXPECT_EQ(runs.at[2], kNewYear + 50min);
  EXPECT_EQ(runs.max_in_flight.load(), 1);
}

// Invariant: cron instants are wall-clock times: a step forward over several instants gives one
// catch-up run; a step back moves the pending instant later on the monotonic time line.
TEST(CronScheduler, WallClockSteps) {
  ThreadPool pool(2);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  Scheduler s(pool, on(clock));
  Runs runs;
  auto series = s.schedule_cron("0 * * * *", "Europe/London", runs.task(clock));
  EXPECT_EQ(series.next_run(), clock.now() + 1h);
  clock.set_system_time(kNewYear + 5h + 30min);  // 01:00 .. 05:00 skipped by the step
  ASSERT_TRUE(eventually([&] { return runs.count() == 1 && series.next_run().has_value(); }));
  settle(s);
  EXPECT_EQ(runs.count(), 1u);
  EXPECT_EQ(series.next_run(), clock.now() + 30min);  // 06:00
  clock.set_system_time(kNewYear + 4h + 30min);     // stepped back an hour: 06:00 is 90 min away
  settle(s);
  EXPECT_EQ(series.next_run(), clock.now() + 90min);
  clock.advance(89min);
  settle(s);
  EXPECT_EQ(runs.count(), 1u);
  clock.advance(1min);
  ASSERT_TRUE(eventually([&] { return runs.count() == 2; }));
  EXPECT_EQ(runs.at[1], kNewYear + 6h);
}

// Invariant: a schedule without instants before 2200 ends at once (its future completes), a
// bad expression throws before anything is scheduled, and close() cancels a series.
TEST(CronScheduler, EndsAndErrors) {
  ThreadPool pool(1);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  Scheduler s(pool, on(clock));
  auto never = s.schedule_cron("0 0 30 2 *", "", [] {});
  EXPECT_FALSE(never.active());
  EXPECT_NO_THROW(never.future().get());
  EXPECT_FALSE(never.next_run().has_value());
  EXPECT_THROW(s.schedule_cron("0 25 * * *", "", [] {}), std::invalid_argument);
  EXPECT_THROW(s.schedule_cron("0 0 * * *", "Nowhere/Special", [] {}), std::invalid_argument);
  EXPECT_EQ(s.pending(), 0u);
  auto daily = s.schedule_cron("@daily", "Asia/Shanghai", [] {});
  EXPECT_EQ(s.pending(), 1u);
  s.close();
  EXPECT_THROW(daily.future().get(), Cancelled);
}

// Invariant: a throwing cron run ends the series (stop_on_error) and its exception reaches the
// future; with stop_on_error = false the series goes on.
TEST(CronScheduler, Errors) {
  ThreadPool pool(2);
  ManualClock clock(ManualClock::steady_time{} + 1h, kNewYear);
  std::atomic<int> reported{0};
  SchedulerOptions o = on(clock);
  o.on_error = [&](std::exception_ptr) { ++reported; };
  Scheduler s(pool, o);
  auto failing = s.schedule_cron("* * * * *", "", [] { throw std::runtime_error("cron run failed"); });
  CronOptions keep;
  keep.stop_on_error = false;
  std::atomic<int> runs{0};
  auto going = s.schedule_cron("* * * * *", "", [&] {
    ++runs;
    throw std::runtime_error("again");
  }, keep);
  clock.advance(1min);
  EXPECT_THROW(failing.future().get(), std::runtime_error);
  ASSERT_TRUE(eventually([&] { return runs == 1 && going.next_run().has_value(); }));
  clock.advance(1min);
  ASSERT_TRUE(eventually([&] { return runs == 2 && reported == 2; }));
  EXPECT_TRUE(going.active());
}

// Invariant: each re-arm moves the deadline to now + delay, but never past the window's first
// arm + max_wait; only the last armed task runs; after it ran, the next arm opens a new window.
TEST(CronScheduler, DebounceMaxWait) {
  ThreadPool pool(2);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  const auto t0 = clock.now();
  std::atomic<int> which{0};
  std::vector<Scheduled<void>> arms;
  for (int i = 0; i < 5; ++i) {  // arms at t0 + 0, 30, 60, 90, 120 s
    arms.push_back(s.debounce("user:1", 60s, [&, i] { which = i + 1; }, {.max_wait = 150s}));
    const auto want = std::min(clock.now() + 60s, t0 + 150s);
    EXPECT_EQ(arms.back().next_run(), want) << i;
    if (i > 0) {
      EXPECT_TRUE(arms[static_cast<std::size_t>(i) - 1].future().cancelled());
    }
    if (i < 4) clock.advance(30s);
  }
  EXPECT_EQ(s.pending(), 1u);
  clock.advance(29s);  // t0 + 149 s
  settle(s);
  EXPECT_FALSE(arms.back().future().ready());
  clock.advance(1s);  // t0 + 150 s: the window's limit, although the last arm asked for 180 s
  arms.back().future().get();
  EXPECT_EQ(which.load(), 5);
  // A new window: deadline now + 60 s, limit now + 150 s.
  const auto t1 = clock.now();
  auto next = s.debounce("user:1", 60s, [&] { which = 6; }, {.max_wait = 150s});
  EXPECT_EQ(next.next_run(), t1 + 60s);
  // Without max_wait the deadline slides freely (the window is kept but has no limit).
  auto free = s.debounce("user:2", 60s, [] {});
  clock.advance(50s);
  free = s.debounce("user:2", 60s, [] {});
  EXPECT_EQ(free.next_run(), clock.now() + 60s);
  EXPECT_THROW(s.debounce("user:3", 1s, [] {}, {.max_wait = -1s}), std::invalid_argument);
}

// Invariant: an arm while the key's task runs opens a new window (the running task is not
// replaced; the new one waits its full delay, limited from its own arm).
TEST(CronScheduler, DebounceArmWhileRunningOpensNewWindow) {
  ThreadPool pool(2);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  std::latch started(1), release(1);
  auto first = s.debounce("k", 10s, [&] {
    started.count_down();
    release.wait();
  }, {.max_wait = 15s});
  clock.advance(10s);
  started.wait();
  clock.advance(100s);
  auto second = s.debounce("k", 10s, [] {}, {.max_wait = 15s});
  EXPECT_EQ(second.next_run(), clock.now() + 10s);
  clock.advance(8s);
  second = s.debounce("k", 10s, [] {}, {.max_wait = 15s});
  EXPECT_EQ(second.next_run(), clock.now() + 7s);  // limited by its own window's first arm
  release.count_down();
  first.future().get();
  clock.advance(7s);
  second.future().get();
}

// Invariant: debounce with max_wait from many threads while the clock moves leaves one pending
// task per key, whose deadline never passes the window's first arm + max_wait.
TEST(CronScheduler, DebounceMaxWaitRaces) {
  ThreadPool pool(4);
  ManualClock clock;
  Scheduler s(pool, on(clock));
  const auto t0 = clock.now();
  std::vector<std::thread> ts;
  std::mutex mu;
  std::vector<Scheduled<void>> all;
  for (int t = 0; t < 4; ++t) ts.emplace_back([&, t] {
      for (int i = 0; i < static_cast<int>(test::scaled(1000)); ++i) {
        if (t == 0 && i % 50 == 49) clock.advance(1s);  // at most 20 s: nothing falls due
        auto h = s.debounce("k" + std::to_string(i % 3), 80s, [] {}, {.max_wait = 90s});
        std::lock_guard lk(mu);
        all.push_back(h);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.pending(), 3u);
  int live = 0;
  for (auto& h : all) {
    if (auto n = h.next_run()) {
      ++live;
      EXPECT_LE(*n, t0 + 90s);
    }
  }
  EXPECT_EQ(live, 3);
  clock.advance(90s);
  for (auto& h : all) h.future().wait();
}

}  // namespace
}  // namespace taskpool
