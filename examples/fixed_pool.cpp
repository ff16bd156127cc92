// Origin note 002: a fixed pool of 2 x CPU threads started explicitly, work put in batches.
#include <taskpool/taskpool.hpp>

#include <cstdio>
#include <functional>
#include <numeric>
#include <thread>
#include <vector>

int main() {
  const std::size_t n = 2 * std::max(1u, std::thread::hardware_concurrency());
  taskpool::ThreadPool pool(n);  // all n threads start here ("start()"); the destructor joins
  std::printf("fixed pool: %zu threads\n", pool.stats().threads);

  // batch_put: one queue operation for the whole batch. A non-callable fails to compile
  // (the C++ form of put's type check).
  std::vector<std::function<long()>> batch;
  for (long i = 1; i <= 1000; ++i) batch.push_back([i] { return i * i; });
  auto futures = pool.submit_batch(batch);
  long sum = 0;
  for (auto& f : futures) sum += f.get();
  std::printf("sum of squares 1..1000 = %ld\n", sum);

  std::vector<std::function<void()>> chores(100, [] {});
  pool.post_batch(chores);
  pool.wait_idle();  // join() in the origin: wait until the queue is empty and workers idle
  std::printf("completed %llu tasks\n", static_cast<unsigned long long>(pool.stats().completed));
}
