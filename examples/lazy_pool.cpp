// Origin note 001: a pool that grows lazily up to max_num, with a bounded queue, results fetched
// by a tag, and close() (finish the queue) versus terminate() (stop early).
#include <taskpool/taskpool.hpp>

#include <atomic>
#include <cstdio>
#include <string>

int main() {
  using namespace std::chrono_literals;
  taskpool::Options opts;
  opts.max_threads = 4;        // max_num
  opts.queue_capacity = 16;    // max_task_num
  opts.when_full = taskpool::WhenFull::block;
  taskpool::ThreadPool pool(opts);
  std::printf("threads before any task: %zu\n", pool.stats().threads);

  taskpool::TaskGroup<std::string, int> results(pool);  // results fetched by a tag
  for (int id = 0; id < 10; ++id) results.submit("task-" + std::to_string(id), [id] { return id * id; });
  std::printf("task-7 -> %d\n", results.get("task-7"));
  std::printf("all %zu results in, threads grown to %zu\n", results.results().size(), pool.stats().threads);

  // terminate(): queued work is cancelled, running work sees its stop token.
  taskpool::ThreadPool short_lived(2);
  std::atomic<bool> started{false};
  auto looping = short_lived.submit([&](std::stop_token stop) {
    started = true;
    int rounds = 0;
    while (!stop.stop_requested()) ++rounds;
    return rounds > 0;
  });
  while (!started) std::this_thread::yield();  // a task still queued would be cancelled instead
  auto never = short_lived.submit([] { return 0; });  // may be cancelled by terminate()
  short_lived.terminate();
  std::printf("terminated: the loop stopped (%s), queued task %s\n", looping.get() ? "yes" : "no",
              never.cancelled() ? "cancelled" : "ran");

  pool.close();  // close(): every queued task still runs, then the threads join
  std::printf("closed: %llu tasks completed\n", static_cast<unsigned long long>(pool.stats().completed));
}
