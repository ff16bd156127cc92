// Origin note 004: requests run on workers; their done and exception callbacks are delivered to
// a result queue that a single-threaded main loop drains with poll()/wait(); workers are added
// and removed at run time.
#include <taskpool/taskpool.hpp>

#include <cstdio>
#include <stdexcept>

int main() {
  taskpool::ThreadPool pool(taskpool::Options{.min_threads = 1, .max_threads = 2});
  taskpool::CompletionQueue results;
  int ok = 0, failed = 0;  // touched only by the main loop: callbacks run here
  for (int i = 0; i < 20; ++i) {
    pool.submit([i] {
          if (i % 7 == 3) throw std::runtime_error("request " + std::to_string(i) + " failed");
          return i * i;
        })
        .then(results, [&](taskpool::Future<int> f) {
          try {
            f.get();  // done callback
            ++ok;
          } catch (const std::exception& e) {  // exception callback
            ++failed;
            std::printf("exception callback: %s\n", e.what());
          }
        });
    if (i == 10) pool.resize(1, 6);  // add workers while requests run
  }
  std::size_t polled = results.poll();  // whatever is ready now, without blocking
  results.wait_all();                   // then everything else
  std::printf("main loop: %d ok, %d failed (%zu delivered by the first poll)\n", ok, failed, polled);
  pool.resize(1, 1);  // dismiss workers again
}
