// tests/stress_test.cpp — long randomized runs mixing every feature (scaled by
// TASKPOOL_STRESS_SCALE; a few minutes in all on 2 cores at scale 1, the release run; the
// sanitizer runs use a smaller scale).
//
// Common invariant: every future completes exactly once, with exactly one of value, exception or
// cancellation; a task runs at most once, and exactly once unless it was cancelled.
#include <atomic>
#include <random>
#include <thread>

#include "common/test_util.hpp"
#include "taskpool/core.hpp"

namespace taskpool {
namespace {

class StressTest : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Threads, StressTest, ::testing::ValuesIn(test::thread_counts()), test::thread_count_name);

// Producers submit (and post, and batch) with random priorities; some tasks throw, some are
// cancelled right after submission, some spawn children; a resizer changes the bounds throughout.
TEST_P(StressTest, MixedWorkload) {
  const std::size_t per_producer = test::scaled(1'500'000);
  const int producers = 3;
  Options o;
  o.min_threads = 1;
  o.max_threads = GetParam();
  o.idle_timeout = std::chrono::milliseconds(1);
  std::atomic<std::uint64_t> posted_errors{0};
  o.on_error = [&](std::exception_ptr) { ++posted_errors; };
  ThreadPool pool(o);
  const std::size_t total = per_producer * producers;
  std::vector<std::atomic<std::uint8_t>> runs(total);
  std::atomic<std::uint64_t> child_runs{0}, posted_runs{0};
  std::atomic<bool> stop_resizing{false};
  std::thread resizer([&] {
    std::mt19937 rng(7);
    while (!stop_resizing) {
      std::size_t mx = 1 + rng() % (GetParam() + 2);
      pool.resize(rng() % (mx + 1), mx);
      std::this_thread::yield();
    }
  });
  std::vector<std::vector<Future<int>>> futures(producers);
  std::vector<std::vector<bool>> cancelled(producers);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::mt19937 rng(static_cast<unsigned>(p));
      auto& fs = futures[static_cast<std::size_t>(p)];
      auto& cs = cancelled[static_cast<std::size_t>(p)];
      fs.reserve(per_producer);
      for (std::size_t k = 0; k < per_producer; ++k) {
        std::size_t id = static_cast<std::size_t>(p) * per_producer + k;
        int prio = static_cast<int>(rng() % kPriorityLevels);
        bool throws = rng() % 13 == 0;
        bool spawns = rng() % 17 == 0;
        fs.push_back(pool.submit(Priority{prio}, [&, id, throws, spawns]() -> int {
          runs[id].fetch_add(1);
          if (spawns) pool.post([&] { child_runs.fetch_add(1); });
          if (throws) throw std::runtime_error("planned");
          return static_cast<int>(id);
        }));
        cs.push_back(rng() % 11 == 0 && fs.back().cancel());
        if (k % 1000 == 0) {
          std::vector<std::function<void()>> batch(8, [&] { posted_runs.fetch_add(1); });
          pool.post_batch(Priority{prio}, batch);
          pool.post([] { throw std::logic_error("posted failure"); });
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  pool.wait_idle();
  stop_resizing = true;
  resizer.join();
  pool.wait_idle();

  std::uint64_t spawned_expected = 0;
  for (int p = 0; p < producers; ++p) {
    for (std::size_t k = 0; k < per_producer; ++k) {
      std::size_t id = static_cast<std::size_t>(p) * per_producer + k;
      auto& f = futures[static_cast<std::size_t>(p)][k];
      ASSERT_TRUE(f.ready()) << id;
      if (cancelled[static_cast<std::size_t>(p)][k]) {
        ASSERT_EQ(runs[id].load(), 0) << id;
        ASSERT_TRUE(f.cancelled());
        continue;
      }
      ASSERT_EQ(runs[id].load(), 1) << id;
      try {
        ASSERT_EQ(f.get(), static_cast<int>(id));
      } catch (const std::runtime_error&) {
      }
    }
  }
  (void)spawned_expected;
  auto s = pool.stats();
  EXPECT_EQ(s.submitted, s.completed + s.failed + s.cancelled);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(posted_runs.load(), 8u * producers * ((per_producer + 999) / 1000));
  EXPECT_EQ(posted_errors.load(), producers * ((per_producer + 999) / 1000));
}

// close()/terminate() race concurrent submitters: every submit either throws PoolClosed or
// returns a future that completes; after close() every accepted task ran; after terminate()
// each accepted task ran or was cancelled, never both, never twice.
TEST_P(StressTest, ShutdownRacesSubmitters) {
  const int rounds = static_cast<int>(test::scaled(300));
  for (int round = 0; round < rounds; ++round) {
    const bool terminate = round % 2 == 1;
    auto pool = std::make_unique<ThreadPool>(GetParam());
    std::vector<std::vector<Future<void>>> futures(3);
    std::vector<std::vector<std::shared_ptr<std::atomic<int>>>> counters(3);
    std::vector<std::thread> producers;
    std::atomic<int> started{0};
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&, p] {
        ++started;
        for (;;) {
          auto c = std::make_shared<std::atomic<int>>(0);
          try {
            auto f = pool->submit([c](std::stop_token) { c->fetch_add(1); });
            futures[static_cast<std::size_t>(p)].push_back(std::move(f));
            counters[static_cast<std::size_t>(p)].push_back(c);
          } catch (const PoolClosed&) {
            return;
          }
        }
      });
    }
    while (started.load() < 3) std::this_thread::yield();
    std::this_thread::yield();
    pool->shutdown(terminate ? Shutdown::terminate : Shutdown::drain);
    for (auto& t : producers) t.join();
    for (int p = 0; p < 3; ++p) {
      auto& fs = futures[static_cast<std::size_t>(p)];
      for (std::size_t i = 0; i < fs.size(); ++i) {
        ASSERT_TRUE(fs[i].ready());
        int n = counters[static_cast<std::size_t>(p)][i]->load();
        if (fs[i].cancelled()) {
          ASSERT_TRUE(terminate);
          ASSERT_EQ(n, 0);
        } else {
          ASSERT_EQ(n, 1);
        }
      }
    }
  }
}

// Deep fork-join with get() inside tasks: exercises stealing and helping together.
TEST_P(StressTest, ForkJoin) {
  ThreadPool pool(GetParam());
  const int n = test::stress_scale() < 0.5 ? 20 : 26;
  long expect[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946, 17711, 28657, 46368, 75025, 121393};
  EXPECT_EQ(pool.submit([&] { return test::fork_join_fib(pool, n); }).get(), expect[n]);
}

}  // namespace
}  // namespace taskpool
