// tests/pool_lifecycle_test.cpp — ThreadPool lifecycle under races and resource exhaustion
// (issue 17): submit racing close() and the last worker's exit, resize() racing close(), lowering
// min_threads, allocation failures (worker slots, deque growth), thread-creation failures and a
// failing membarrier. Failures are injected through the engine's fault points
// (tests/common/fault_injection.hpp); races are driven by stress loops or a lifecycle hook.
#include <atomic>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "common/fault_injection.hpp"
#include "common/test_util.hpp"
#include "taskpool/core.hpp"
#include "taskpool/detail/pool_access.hpp"

using namespace std::chrono_literals;
using taskpool::detail::FaultPoint;
using taskpool::detail::PoolAccess;
using taskpool::test::Arrivals;
using taskpool::test::eventually;
using taskpool::test::Gate;
using taskpool::test::HangGuard;
using taskpool::test::ScopedFault;

namespace taskpool {
namespace {

class LifecycleTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, LifecycleTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

// Lines two threads up before a racy pair of calls (both spin until both arrived).
class StartLine {
 public:
  void arrive_and_wait() {
    n_.fetch_add(1, std::memory_order_acq_rel);
    while (n_.load(std::memory_order_acquire) < 2) std::this_thread::yield();
  }

 private:
  std::atomic<int> n_{0};
};

// Submits one task on another thread while this thread closes `pool`. True when the contract
// holds: submit threw PoolClosed, or its task ran (close() drains what was accepted).
bool submit_racing_close(ThreadPool& pool) {
  StartLine line;
  std::atomic<bool> ran{false};
  std::optional<Future<void>> f;
  std::thread submitter([&] {
    line.arrive_and_wait();
    try {
      f = pool.submit([&] { ran.store(true); });
    } catch (const PoolClosed&) {
    }
  });
  line.arrive_and_wait();
  pool.close();
  submitter.join();
  if (!f) return true;
  return ran.load() && f->ready() && !f->cancelled();
}

// Occupies `n` workers of `pool` with tasks blocked on `gate`; returns once all n run.
std::vector<Future<void>> occupy(ThreadPool& pool, std::size_t n, Gate& gate, Arrivals& started) {
  std::vector<Future<void>> blockers;
  for (std::size_t i = 0; i < n; ++i) {
    blockers.push_back(pool.submit([&] {
      started.arrive();
      gate.wait();
    }));
    started.wait_for(static_cast<int>(i + 1));  // one at a time: a lazy pool starts one thread each
  }
  return blockers;
}

// ---- item 1: close() vs a submission it must not cancel ---------------------------------------

// Invariant: a submit() racing close() on a pool with no live thread (a fresh lazy pool) either
// throws PoolClosed or its task runs; close() never cancels a task submit() accepted.
TEST_P(LifecycleTest, SubmitRacingCloseOnFreshPoolNeverLosesTask) {
  HangGuard guard;
  std::size_t lost = 0;
  const std::size_t rounds = test::scaled(1000);
  for (std::size_t r = 0; r < rounds; ++r) {
    ThreadPool pool(Options{.min_threads = 0, .max_threads = GetParam()});
    if (!submit_racing_close(pool)) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << rounds << " rounds";
}

// Invariant: as above while the pool's last worker is exiting (idle_timeout 0: it retires as soon
// as it has nothing to do), the window where threads_ reaches 0 under a submission.
TEST_P(LifecycleTest, SubmitRacingCloseWhileLastWorkerExitsNeverLosesTask) {
  HangGuard guard;
  std::size_t lost = 0;
  const std::size_t rounds = test::scaled(1000);
  for (std::size_t r = 0; r < rounds; ++r) {
    ThreadPool pool(Options{.min_threads = 0, .max_threads = GetParam(), .idle_timeout = 0ms});
    pool.submit([] {}).get();  // a worker exists and is about to retire
    if (!submit_racing_close(pool)) ++lost;
  }
  EXPECT_EQ(lost, 0u) << "of " << rounds << " rounds";
}

// Submits one task while close() runs as far as it can get while the submitter is held where it
// would start a worker for its queued task (the spawn_unlocked hook): to its end, or to its wait
// for the pool to become idle. Returns the submitted future (empty when submit threw PoolClosed).
std::optional<Future<int>> submit_held_at_spawn_while_closing(ThreadPool& pool) {
  std::thread closer;
  std::atomic<bool> close_returned{false};
  std::atomic<int> fired{0};
  std::optional<Future<int>> f;
  {
    test::ScopedHook hook(detail::HookPoint::spawn_unlocked, [&] {
      if (fired.fetch_add(1) != 0) return;
      closer = std::thread([&] {
        pool.close();
        close_returned.store(true);
      });
      EXPECT_TRUE(eventually([&] { return close_returned.load() || PoolAccess::idle_waiters(pool) > 0; }));
    });
    try {
      f = pool.submit([] { return 4; });
    } catch (const PoolClosed&) {
    }
  }
  if (closer.joinable()) {
    closer.join();
  } else {
    pool.close();  // the submission started its worker before queueing: no window to hold
  }
  return f;
}

// Invariant (deterministic): close() does not cancel a task whose submit() is between queueing
// it and starting the first worker of a fresh lazy pool: submit throws PoolClosed or the task runs.
TEST(LifecycleClose, CloseWhileSubmitterStartsFirstWorkerKeepsTask) {
  HangGuard guard;
  ThreadPool pool(Options{.min_threads = 0, .max_threads = 2});
  auto f = submit_held_at_spawn_while_closing(pool);
  if (f) {
    EXPECT_FALSE(f->cancelled());
    EXPECT_EQ(f->get(), 4);
  }
}

// Invariant (deterministic): as above after every worker exited idle (threads_ back to 0).
TEST(LifecycleClose, CloseWhileSubmitterRestartsPoolAfterIdleExitKeepsTask) {
  HangGuard guard;
  ThreadPool pool(Options{.min_threads = 0, .max_threads = 2, .idle_timeout = 0ms});
  pool.submit([] {}).get();
  ASSERT_TRUE(eventually([&] { return pool.stats().threads == 0; }));
  auto f = submit_held_at_spawn_while_closing(pool);
  if (f) {
    EXPECT_FALSE(f->cancelled());
    EXPECT_EQ(f->get(), 4);
  }
}

// ---- item 2: resize() vs close() --------------------------------------------------------------

// Invariant: a resize() that passed its closed() check just before close() ran to the end starts
// no thread (close() has joined all of them already): it throws PoolClosed, and the pool has no
// thread, so the destructor does not meet an unjoined std::thread (std::terminate).
TEST(LifecycleResize, ResizeInCloseWindowStartsNoThread) {
  HangGuard guard;
  ThreadPool pool(Options{.min_threads = 0, .max_threads = 4});
  {
    test::ScopedHook hook(detail::HookPoint::resize_unlocked, [&] { pool.close(); });
    EXPECT_THROW(pool.resize(2, 4), PoolClosed);
  }
  EXPECT_EQ(pool.stats().threads, 0u);
}

// Invariant: resize() racing close() either throws PoolClosed or its threads are joined by close():
// after close() returns no worker is alive (stress, no hook).
TEST_P(LifecycleTest, ResizeRacingCloseLeavesNoThread) {
  HangGuard guard;
  const std::size_t n = GetParam();
  for (std::size_t r = 0, rounds = test::scaled(300); r < rounds; ++r) {
    ThreadPool pool(Options{.min_threads = 0, .max_threads = n});
    StartLine line;
    std::thread resizer([&] {
      line.arrive_and_wait();
      try {
        pool.resize(n, n);
      } catch (const PoolClosed&) {
      }
    });
    line.arrive_and_wait();
    pool.close();
    resizer.join();
    ASSERT_EQ(pool.stats().threads, 0u) << "round " << r;
  }
}

// ---- item 3: a worker's deque cannot grow ------------------------------------------------------

// Invariant: when a worker's deque cannot grow (no memory), a submission from a task on that
// worker still queues its child (on the shared list): nothing throws, every child runs, and the
// pool becomes idle. (The bug: the child was counted submitted but neither queued nor discarded,
// so wait_idle(), close() and the destructor hung.) Other workers are kept busy so the deque
// fills up deterministically.
TEST_P(LifecycleTest, DequeGrowthFailureInTaskSubmissionLosesNothing) {
  HangGuard guard;
  const std::size_t n = GetParam();
  ThreadPool pool(n);
  Gate gate;
  Arrivals started;
  auto blockers = occupy(pool, n - 1, gate, started);
  constexpr int kChildren = 600;  // more than a deque's first 256 slots: it must grow
  std::atomic<int> ran{0}, threw{0};
  const std::uint64_t hits = detail::fault_hits(FaultPoint::deque_grow);
  {
    ScopedFault fault(FaultPoint::deque_grow, 0, 1);
    pool.submit([&] {
          for (int i = 0; i < kChildren; ++i) {
            try {
              pool.post([&] { ran.fetch_add(1); });
            } catch (...) {
              threw.fetch_add(1);
            }
          }
        })
        .get();
  }
  EXPECT_GT(detail::fault_hits(FaultPoint::deque_grow), hits);  // the failure was injected
  gate.open();
  EXPECT_TRUE(pool.wait_idle_for(30s));
  EXPECT_EQ(threw.load(), 0);
  EXPECT_EQ(ran.load(), kChildren);
}

// Invariant: when a worker moving a batch from the shared list into its (nearly full) deque
// cannot grow the deque, it moves fewer tasks and leaves the rest listed: no exception escapes
// the worker (the bug: bad_alloc left worker_main and terminated the process) and every task
// runs. Chains of self-re-posting tasks keep the worker's deque near its first capacity while
// listed tasks wait; the fairness rule then moves a batch off the list (find_task).
TEST_P(LifecycleTest, DequeGrowthFailureOnBatchMoveLosesNothing) {
  HangGuard guard;
  const std::size_t n = GetParam();
  ThreadPool pool(n);
  Gate gate;
  Arrivals started;
  auto blockers = occupy(pool, n - 1, gate, started);
  constexpr int kChains = 250, kLinks = 20, kListed = 100;
  std::atomic<int> ran{0};
  std::function<void(int)> link = [&](int left) {
    ran.fetch_add(1);
    if (left > 1) pool.post([&link, left] { link(left - 1); });
  };
  const std::uint64_t hits = detail::fault_hits(FaultPoint::deque_grow);
  {
    ScopedFault fault(FaultPoint::deque_grow, 0, 1);
    Gate listed;
    Arrivals pushed;
    auto parent = pool.submit([&] {
      for (int i = 0; i < kChains; ++i) pool.post([&link] { link(kLinks); });
      pushed.arrive();
      listed.wait();
    });
    pushed.wait_for(1);
    for (int i = 0; i < kListed; ++i) pool.post([&] { ran.fetch_add(1); });  // from outside: listed
    listed.open();
    parent.get();
    EXPECT_TRUE(eventually([&] { return ran.load() == kChains * kLinks + kListed; }, 60s));
  }
  EXPECT_GT(detail::fault_hits(FaultPoint::deque_grow), hits);
  gate.open();
  EXPECT_TRUE(pool.wait_idle_for(30s));
  EXPECT_EQ(ran.load(), kChains * kLinks + kListed);
}

// ---- item 4: growing the pool fails after the task was queued ----------------------------------

// Invariant: a submission that queued its task returns normally even when starting an extra
// worker for it then fails (no memory for the worker slot, or no thread): the task runs on the
// workers there are. (The bug: bad_alloc escaped submit() after the task was queued, so the
// caller saw a failure for a task that ran anyway.)
TEST_P(LifecycleTest, FailedGrowthAfterQueueingDoesNotFailSubmit) {
  HangGuard guard;
  const std::size_t n = GetParam();
  ThreadPool pool(Options{.min_threads = 0, .max_threads = n + 1});
  Gate gate;
  Arrivals started;
  auto blockers = occupy(pool, n, gate, started);  // every worker busy: a submission must grow
  std::vector<Future<int>> fs;
  for (FaultPoint p : {FaultPoint::worker_alloc, FaultPoint::thread_start}) {
    ScopedFault fault(p);
    const std::uint64_t hits = detail::fault_hits(p);
    try {
      fs.push_back(pool.submit([] { return 7; }));
    } catch (const std::exception& e) {
      ADD_FAILURE() << "submit threw " << e.what() << " after queueing its task";
    }
    EXPECT_GT(detail::fault_hits(p), hits);  // the growth was tried and failed
  }
  gate.open();
  for (auto& f : fs) EXPECT_EQ(f.get(), 7);
  pool.wait_idle();
}

// ---- item 5: threads cannot be created ---------------------------------------------------------

// Invariant: a pool whose threads cannot be created fails to construct with ThreadStartFailed,
// at once (the bug: the constructor retried forever, printing a line per attempt).
TEST(LifecycleThreads, ConstructorThrowsWhenThreadsCannotStart) {
  HangGuard guard;
  ScopedFault fault(FaultPoint::thread_start);
  EXPECT_THROW(ThreadPool pool(4), ThreadStartFailed);
}

// Invariant: when thread creation fails part way, the constructor stops and joins the threads it
// did start (each runs on_thread_stop) before it throws, so nothing outlives the failed pool.
TEST(LifecycleThreads, ConstructorJoinsThreadsStartedBeforeTheFailure) {
  HangGuard guard;
  std::atomic<int> starts{0}, stops{0};
  Options o{.min_threads = 4, .max_threads = 4};
  o.on_thread_start = [&](std::size_t) { starts.fetch_add(1); };
  o.on_thread_stop = [&](std::size_t) { stops.fetch_add(1); };
  ScopedFault fault(FaultPoint::thread_start, 2);
  EXPECT_THROW(ThreadPool pool(o), ThreadStartFailed);
  EXPECT_EQ(starts.load(), 2);
  EXPECT_EQ(stops.load(), 2);
}

// Invariant: a submission to a pool with no live thread that cannot start one throws
// ThreadStartFailed and its task never runs (it was not queued); once threads can start again the
// pool works. (The bug: submit returned normally and its task waited for a thread forever.)
TEST(LifecycleThreads, SubmitThrowsWhenNoThreadCanStart) {
  HangGuard guard;
  ThreadPool pool(Options{.min_threads = 0, .max_threads = 2});
  std::atomic<bool> ran{false};
  {
    ScopedFault fault(FaultPoint::thread_start);
    EXPECT_THROW(pool.submit([&] { ran.store(true); }), ThreadStartFailed);
    EXPECT_THROW(pool.post([&] { ran.store(true); }), ThreadStartFailed);
    EXPECT_THROW(pool.submit_batch(std::vector<std::function<void()>>(3, [&] { ran.store(true); })), ThreadStartFailed);
  }
  EXPECT_EQ(pool.submit([] { return 1; }).get(), 1);
  pool.close();
  EXPECT_FALSE(ran.load());
  Stats s = pool.stats();
  EXPECT_EQ(s.submitted, s.completed + s.failed + s.cancelled);
}

// Invariant: a submission racing the exit of the pool's last worker while no thread can be
// started either throws ThreadStartFailed or its task runs: no accepted task waits for a thread
// that will never come.
TEST(LifecycleThreads, SubmitRacingLastWorkerExitWithoutThreadsNeverStrands) {
  HangGuard guard;
  std::size_t stranded = 0;
  const std::size_t rounds = test::scaled(500);
  for (std::size_t r = 0; r < rounds; ++r) {
    ThreadPool pool(Options{.min_threads = 0, .max_threads = 1, .idle_timeout = 0ms});
    pool.submit([] {}).get();  // one worker, about to retire
    ScopedFault fault(FaultPoint::thread_start);
    try {
      auto f = pool.submit([] { return 5; });
      // A bound on a hang, not a timing assertion: the task is queued with a thread to run it.
      if (f.wait_for(10s) != std::future_status::ready) {
        ++stranded;
        break;
      }
      EXPECT_EQ(f.get(), 5);
    } catch (const ThreadStartFailed&) {
    }
  }
  EXPECT_EQ(stranded, 0u);
}

// Invariant: resize() that cannot start the threads of its new minimum throws ThreadStartFailed
// (the new bounds stay), instead of failing silently.
TEST(LifecycleThreads, ResizeReportsThreadsItCannotStart) {
  HangGuard guard;
  ThreadPool pool(Options{.min_threads = 0, .max_threads = 2});
  {
    ScopedFault fault(FaultPoint::thread_start);
    EXPECT_THROW(pool.resize(2, 4), ThreadStartFailed);
  }
  EXPECT_EQ(pool.stats().min_threads, 2u);
  EXPECT_EQ(pool.submit([] { return 2; }).get(), 2);
}

// ---- item 6: lowering min_threads -------------------------------------------------------------

// Invariant: after resize() lowers min_threads, idle workers above the new minimum exit after
// idle_timeout — also the ones that were asleep without a timeout (at the old minimum).
TEST_P(LifecycleTest, LoweringMinThreadsLetsIdleWorkersExit) {
  HangGuard guard(120s);
  const std::size_t n = GetParam();
  ThreadPool pool(Options{.min_threads = n, .max_threads = n, .idle_timeout = 1ms});
  ASSERT_TRUE(eventually([&] { return PoolAccess::sleeping_workers(pool) == n; }));
  pool.resize(0, n);
  EXPECT_TRUE(eventually([&] { return pool.stats().threads == 0; }, 30s));
  EXPECT_EQ(pool.submit([] { return 3; }).get(), 3);  // and the pool grows again on demand
}

// ---- item 7: the heavy barrier fails ------------------------------------------------------------

// Invariant: when membarrier fails, sleeping workers are still woken for every task (no lost
// wake-up) and notifications fall back to the RMW protocol; once a barrier succeeds again the
// event count is fully symmetric. Every round submits to a pool whose workers all sleep.
TEST_P(LifecycleTest, FailingMembarrierFallsBackToRmwProtocol) {
  HangGuard guard(120s);
  const std::size_t n = GetParam();
  ThreadPool pool(n);
  const int initial = PoolAccess::wakeup_protocol(pool);
  const std::uint64_t hits = detail::fault_hits(FaultPoint::membarrier);
  {
    ScopedFault fault(FaultPoint::membarrier);
    for (int i = 0, rounds = static_cast<int>(test::scaled(100)); i < rounds; ++i) {
      ASSERT_TRUE(eventually([&] { return PoolAccess::sleeping_workers(pool) == n; }));
      EXPECT_EQ(pool.submit([i] { return i; }).get(), i);
    }
    if (initial == 0) {  // membarrier in use (not on kernels without it, nor TASKPOOL_NO_MEMBARRIER=1)
      EXPECT_GT(detail::fault_hits(FaultPoint::membarrier), hits);
      EXPECT_NE(PoolAccess::wakeup_protocol(pool), 0);
    }
  }
  if (initial == 0) {
    EXPECT_TRUE(eventually([&] { return PoolAccess::wakeup_protocol(pool) == 2; }));
  }
  EXPECT_EQ(pool.submit([] { return 1; }).get(), 1);
}

}  // namespace
}  // namespace taskpool
