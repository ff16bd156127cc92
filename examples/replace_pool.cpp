// Origin note 000: the bot re-creates its pool with a new size, interrupting the old one
// (its `terminal` flag). Here: stop tokens, terminate(), and — better — resize() in place.
#include <taskpool/taskpool.hpp>

#include <atomic>
#include <cstdio>
#include <memory>

int main() {
  auto pool = std::make_unique<taskpool::ThreadPool>(taskpool::Options{.max_threads = 8});
  std::atomic<int> polls{0};
  // The origin's polling loop, written as a stop-aware task.
  auto detector = pool->submit([&](std::stop_token stop) {
    while (!stop.stop_requested()) polls.fetch_add(1, std::memory_order_relaxed);
  });
  while (polls.load() == 0) std::this_thread::yield();

  // init_thread_pool(max_num=20): interrupt the old pool, start a new one.
  pool->terminate();
  detector.get();
  pool = std::make_unique<taskpool::ThreadPool>(taskpool::Options{.max_threads = 20});
  std::printf("old pool interrupted after %s polls; new pool max_threads=%zu\n", polls.load() > 0 ? "some" : "no",
              pool->stats().max_threads);

  // Without interrupting anything: change the bounds of the running pool.
  for (int i = 0; i < 1000; ++i) pool->post([] {});
  pool->resize(2, 4);
  pool->wait_idle();
  auto s = pool->stats();
  std::printf("resized in place: min=%zu max=%zu, %llu tasks completed\n", s.min_threads, s.max_threads,
              static_cast<unsigned long long>(s.completed));
}
