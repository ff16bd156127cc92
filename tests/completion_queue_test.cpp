// tests/completion_queue_test.cpp — callbacks delivered on the draining thread (item 9).
#include <atomic>
#include <thread>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

using namespace std::chrono_literals;
using taskpool::test::Gate;

namespace taskpool {
namespace {

class CqTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, CqTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

// Invariant: then(cq, f) never runs f before the owner drains, and runs it on the draining thread.
TEST_P(CqTest, CallbacksRunOnlyWhenDrained) {
  ThreadPool pool(GetParam());
  CompletionQueue cq;
  std::atomic<int> ran{0};
  std::vector<Future<std::thread::id>> outs;
  std::vector<Future<int>> srcs;
  for (int i = 0; i < 50; ++i) {
    srcs.push_back(pool.submit([i] { return i; }));
    outs.push_back(srcs.back().then(cq, [&](int) {
      ++ran;
      return std::this_thread::get_id();
    }));
  }
  EXPECT_EQ(cq.pending(), 50u);
  for (auto& s : srcs) s.wait();
  EXPECT_EQ(ran.load(), 0);  // finished tasks, but nothing drained yet
  cq.wait_all();
  EXPECT_EQ(ran.load(), 50);
  EXPECT_EQ(cq.pending(), 0u);
  for (auto& o : outs) EXPECT_EQ(o.get(), std::this_thread::get_id());
}

// Invariant: an exception callback (Future-taking continuation) and a throwing callback both
// deliver their outcome through the drain; nothing is lost.
TEST_P(CqTest, ExceptionsAreDelivered) {
  ThreadPool pool(GetParam());
  CompletionQueue cq;
  std::string seen;
  auto handled = pool.submit([]() -> int { throw std::runtime_error("task failed"); }).then(cq, [&](Future<int> f) {
    try {
      f.get();
    } catch (const std::exception& e) {
      seen = e.what();
    }
  });
  auto thrown = pool.submit([] { return 1; }).then(cq, [](int) -> int { throw std::logic_error("callback failed"); });
  cq.wait_all();
  EXPECT_EQ(seen, "task failed");
  EXPECT_NO_THROW(handled.get());
  EXPECT_THROW(thrown.get(), std::logic_error);
}

// Invariant: poll() runs what is ready without blocking; run_for() bounds its wait.
TEST(CompletionQueue, PollAndRunFor) {
  ThreadPool pool(1);
  CompletionQueue cq;
  Gate gate;
  auto src = pool.submit([&] {
    gate.wait();
    return 1;
  });
  int got = 0;
  auto out = src.then(cq, [&](int v) { got = v; });
  EXPECT_EQ(cq.poll(), 0u);
  EXPECT_EQ(cq.run_for(1ms), 0u);
  EXPECT_EQ(cq.pending(), 1u);
  gate.open();
  src.wait();
  EXPECT_EQ(cq.run_for(std::chrono::hours(1)), 1u);
  EXPECT_EQ(got, 1);
  EXPECT_EQ(cq.poll(), 0u);
}

// Invariant: destroying a queue with undelivered callbacks cancels their result futures.
TEST(CompletionQueue, DestroyedQueueCancelsResults) {
  ThreadPool pool(1);
  Future<int> out;
  {
    CompletionQueue cq;
    auto src = pool.submit([] { return 1; });
    out = src.then(cq, [](int v) { return v; });
    src.wait();
  }
  EXPECT_THROW(out.get(), Cancelled);
}

// Invariant: several threads draining one queue run each callback exactly once.
TEST_P(CqTest, ConcurrentDrainersRunEachOnce) {
  ThreadPool pool(GetParam());
  CompletionQueue cq;
  std::atomic<int> ran{0};
  for (int i = 0; i < 2000; ++i) pool.submit([] {}).then(cq, [&] { ++ran; });
  std::vector<std::thread> drainers;
  for (int t = 0; t < 3; ++t) drainers.emplace_back([&] { cq.wait_all(); });
  for (auto& t : drainers) t.join();
  EXPECT_EQ(ran.load(), 2000);
}

}  // namespace
}  // namespace taskpool
