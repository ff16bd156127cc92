// tests/task_group_test.cpp — tagged results (TaskGroup).
#include <atomic>
#include <string>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

using taskpool::test::Arrivals;
using taskpool::test::Gate;

namespace taskpool {
namespace {

class GroupTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, GroupTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

// Invariant: each key maps to its own task's result.
TEST_P(GroupTest, ResultsByKey) {
  ThreadPool pool(GetParam());
  TaskGroup<std::string, int> g(pool);
  for (int i = 0; i < 100; ++i) g.submit("task-" + std::to_string(i), [i] { return i * i; });
  EXPECT_EQ(g.get("task-7"), 49);
  auto all = g.results();
  ASSERT_EQ(all.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(all["task-" + std::to_string(i)], i * i);
}

TEST_P(GroupTest, MisuseIsReported) {
  ThreadPool pool(GetParam());
  TaskGroup<int, int> g(pool);
  g.submit(1, [] { return 1; });
  EXPECT_THROW(g.submit(1, [] { return 2; }), std::invalid_argument);
  EXPECT_THROW(g.get(2), std::out_of_range);
  g.submit(3, []() -> int { throw std::runtime_error("x"); });
  EXPECT_THROW(g.get(3), std::runtime_error);
  EXPECT_THROW(g.results(), std::runtime_error);
  g.wait();  // never throws
}

// Invariant: TaskGroup::submit follows ThreadPool's convention: [Priority,] key, f, args...;
// results convert to T, and a stop_token-taking callable gets its token.
TEST(TaskGroup, PriorityFirstAndBoundArguments) {
  ThreadPool pool(1);
  Gate gate;
  Arrivals started;
  pool.post([&] {
    started.arrive();
    gate.wait();
  });
  started.wait_for(1);
  TaskGroup<std::string, long> g(pool);
  g.submit(Priority{8}, "sum", [](int x, int y) { return x + y; }, 2, 3);     // int converts to long
  g.submit("len", [](const std::string& s) { return static_cast<long>(s.size()); }, std::string("four"));
  g.submit(Priority{2}, "token", [](std::stop_token t, long x) { return t.stop_possible() ? x : -1; }, 7L);
  EXPECT_EQ(pool.stats().queued_by_priority[8], 1u);
  EXPECT_EQ(pool.stats().queued_by_priority[2], 1u);
  EXPECT_EQ(pool.stats().queued_by_priority[kDefaultPriority.value], 1u);
  gate.open();
  EXPECT_EQ(g.get("sum"), 5);
  EXPECT_EQ(g.get("len"), 4);
  EXPECT_EQ(g.get("token"), 7);
}

// Invariant: cancel() cancels exactly the tasks that had not started.
TEST(TaskGroup, CancelPending) {
  ThreadPool pool(1);
  Gate gate;
  Arrivals started;
  TaskGroup<int, int> g(pool);
  g.submit(0, [&] {
    started.arrive();
    gate.wait();
    return 0;
  });
  started.wait_for(1);
  for (int i = 1; i <= 5; ++i) g.submit(i, [i] { return i; });
  EXPECT_EQ(g.cancel(), 5u);
  gate.open();
  EXPECT_EQ(g.get(0), 0);
  EXPECT_THROW(g.get(3), Cancelled);
}

}  // namespace
}  // namespace taskpool
