// tests/future_test.cpp — Future, continuations and combinators.
#include <atomic>
#include <set>
#include <thread>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

using namespace std::chrono_literals;
using taskpool::test::Arrivals;
using taskpool::test::Gate;

namespace taskpool {
namespace {

class FutureTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, FutureTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

TEST(Future, EmptyFutureThrowsLogicError) {
  Future<int> f;
  EXPECT_FALSE(f.valid());
  EXPECT_FALSE(f.ready());
  EXPECT_THROW(f.get(), std::logic_error);
}

// Invariant: copies share one outcome; a move-only result is moved out by get().
TEST_P(FutureTest, CopiesShareStateAndMoveOnlyResults) {
  ThreadPool pool(GetParam());
  auto f = pool.submit([] { return std::make_unique<int>(42); });
  auto g = f;
  EXPECT_EQ(*g.get(), 42);
  auto h = pool.submit([] { return std::string("x"); });
  auto h2 = h;
  EXPECT_EQ(h.get(), "x");
  EXPECT_EQ(h2.get(), "x");
}

// Invariant: wait_for/wait_until time out on an unfinished task and report ready afterwards.
TEST_P(FutureTest, WaitForAndWaitUntil) {
  ThreadPool pool(GetParam());
  Gate gate;
  auto f = pool.submit([&] {
    gate.wait();
    return 1;
  });
  EXPECT_EQ(f.wait_for(1ms), std::future_status::timeout);
  EXPECT_EQ(f.wait_until(std::chrono::system_clock::now() + 1ms), std::future_status::timeout);
  gate.open();
  EXPECT_EQ(f.wait_until(std::chrono::steady_clock::now() + std::chrono::hours(1)), std::future_status::ready);
  EXPECT_TRUE(f.ready());
}

// Invariant: then() chains values, skips f on failure (the exception passes through), and a
// Future-taking continuation sees every outcome.
TEST_P(FutureTest, ThenChainsAndPropagates) {
  ThreadPool pool(GetParam());
  auto f = pool.submit([] { return 20; }).then([](int x) { return x + 1; }).then([](int x) { return x * 2; });
  EXPECT_EQ(f.get(), 42);
  std::atomic<bool> called{false};
  auto bad = pool.submit([]() -> int { throw std::domain_error("e"); }).then([&](int x) {
    called = true;
    return x;
  });
  EXPECT_THROW(bad.get(), std::domain_error);
  EXPECT_FALSE(called.load());
  auto seen = pool.submit([]() -> int { throw std::domain_error("e"); }).then([](Future<int> r) {
    try {
      r.get();
      return std::string("value");
    } catch (const std::domain_error&) {
      return std::string("error");
    }
  });
  EXPECT_EQ(seen.get(), "error");
  auto v = pool.submit([] {}).then([] { return 3; });
  EXPECT_EQ(v.get(), 3);
}

// Invariant: a continuation that throws completes its result with that exception.
TEST_P(FutureTest, ThrowingContinuation) {
  ThreadPool pool(GetParam());
  auto f = pool.submit([] { return 1; }).then([](int) -> int { throw std::length_error("c"); });
  EXPECT_THROW(f.get(), std::length_error);
}

// Invariant: cancellation passes through then(); on_done runs once per registration, in order.
TEST_P(FutureTest, CancelPropagatesAndOnDoneRunsOnce) {
  ThreadPool pool(GetParam());
  Gate gate;
  Arrivals started;
  std::vector<Future<void>> blockers;
  for (std::size_t i = 0; i < GetParam(); ++i) blockers.push_back(pool.submit([&] {
    started.arrive();
    gate.wait();
  }));
  started.wait_for(static_cast<int>(GetParam()));
  auto f = pool.submit([] { return 1; });
  auto t = f.then([](int x) { return x; });
  std::vector<int> calls;
  std::mutex mu;
  f.on_done([&](Future<int> g) {
    std::lock_guard lk(mu);
    calls.push_back(g.cancelled() ? 1 : 0);
  });
  f.on_done([&] {
    std::lock_guard lk(mu);
    calls.push_back(2);
  });
  EXPECT_TRUE(f.cancel());
  EXPECT_THROW(t.get(), Cancelled);
  gate.open();
  pool.wait_idle();
  EXPECT_EQ(calls, (std::vector<int>{1, 2}));
  // Registered after completion: runs at once on this thread.
  bool now = false;
  f.on_done([&] { now = true; });
  EXPECT_TRUE(now);
}

// Invariant: many threads registering callbacks while the task completes: each runs exactly once.
// (wait() returns once the value is published; callbacks may still be running, hence eventually.)
TEST_P(FutureTest, ConcurrentOnDoneRegistration) {
  ThreadPool pool(GetParam());
  for (int round = 0; round < 50; ++round) {
    auto ran = std::make_shared<std::atomic<int>>(0);
    auto f = pool.submit([] { return 1; });
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) ts.emplace_back([&] {
        for (int i = 0; i < 100; ++i) f.on_done([ran] { ++*ran; });
      });
    for (auto& t : ts) t.join();
    f.wait();
    ASSERT_TRUE(test::eventually([&] { return ran->load() >= 400; }));
    pool.wait_idle();
    EXPECT_EQ(ran->load(), 400);
  }
}

// Invariant: when_all yields every value in input order, or the first failure.
TEST_P(FutureTest, WhenAll) {
  ThreadPool pool(GetParam());
  std::vector<Future<int>> fs;
  for (int i = 0; i < 100; ++i) fs.push_back(pool.submit([i] { return i; }));
  auto all = when_all(fs).get();
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)], i);
  fs.push_back(pool.submit([]() -> int { throw std::invalid_argument("bad"); }));
  EXPECT_THROW(when_all(fs).get(), std::invalid_argument);
  EXPECT_TRUE(when_all(std::vector<Future<int>>{}).get().empty());
  std::vector<Future<void>> vs{pool.submit([] {}), pool.submit([] {})};
  EXPECT_NO_THROW(when_all(vs).get());
}

// Invariant: when_any reports the index of a completed input.
TEST_P(FutureTest, WhenAny) {
  ThreadPool pool(GetParam());
  Gate gate;
  std::vector<Future<int>> fs{pool.submit([&] {
                                gate.wait();
                                return 0;
                              }),
                              pool.submit([] { return 1; })};
  if (GetParam() > 1) {
    EXPECT_EQ(when_any(fs).get(), 1u);
  }
  gate.open();
  EXPECT_LT(when_any(fs).get(), 2u);
  EXPECT_THROW(when_any(std::vector<Future<int>>{}), std::invalid_argument);
}

// Invariant: as_completed yields each future exactly once, in completion order.
TEST_P(FutureTest, AsCompletedYieldsEachOnceInCompletionOrder) {
  ThreadPool pool(GetParam());
  std::vector<Future<int>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(pool.submit([i] { return i; }));
  std::set<int> seen;
  for (auto f : as_completed(fs)) {
    EXPECT_TRUE(f.ready());
    EXPECT_TRUE(seen.insert(f.get()).second);
  }
  EXPECT_EQ(seen.size(), 200u);

  ThreadPool one(1);
  Gate gate;
  std::vector<Future<int>> gs{one.submit([&] {
                                gate.wait();
                                return 0;
                              }),
                              one.submit([] { return 1; })};
  auto ac = as_completed(gs);
  EXPECT_FALSE(ac.next_for(1ms).has_value());  // nothing done while the gate holds
  gate.open();
  EXPECT_EQ(ac.next()->get(), 0);
  EXPECT_EQ(ac.next()->get(), 1);
  EXPECT_FALSE(ac.next().has_value());
}

// Invariant: wait() with each ReturnWhen splits done/not_done truthfully.
TEST_P(FutureTest, WaitReturnWhen) {
  ThreadPool pool(GetParam() + 1);
  Gate gate;
  std::vector<Future<int>> fs{pool.submit([&] {
                                gate.wait();
                                return 0;
                              }),
                              pool.submit([] { return 1; })};
  auto r = wait(fs, std::chrono::hours(1), ReturnWhen::first_completed);
  EXPECT_GE(r.done.size(), 1u);
  auto t = wait(fs, 2ms, ReturnWhen::all_completed);
  EXPECT_EQ(t.not_done.size(), 1u);
  std::vector<Future<int>> gs{fs[0], pool.submit([]() -> int { throw std::runtime_error("x"); })};
  auto e = wait(gs, std::chrono::hours(1), ReturnWhen::first_exception);
  EXPECT_EQ(e.done.size(), 1u);
  EXPECT_EQ(e.not_done.size(), 1u);
  gate.open();
  auto a = wait(fs, ReturnWhen::all_completed);
  EXPECT_EQ(a.done.size(), 2u);
  EXPECT_TRUE(a.not_done.empty());
}

}  // namespace
}  // namespace taskpool
