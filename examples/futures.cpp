// Origin note 003 (concurrent.futures): submit -> Future, exceptions in the future, done
// callbacks, as_completed, wait(FIRST_COMPLETED), shutdown(cancel_futures) and a broken pool.
#include <taskpool/taskpool.hpp>

#include <cstdio>
#include <stdexcept>

int main() {
  taskpool::ThreadPool pool(4);
  std::vector<taskpool::Future<int>> fs;
  for (int i = 0; i < 8; ++i)
    fs.push_back(pool.submit([i] {
      if (i == 5) throw std::runtime_error("task 5 failed");
      return i * 10;
    }));
  fs[0].on_done([](taskpool::Future<int> f) { std::printf("done callback: first task -> %d\n", f.get()); });

  for (auto f : taskpool::as_completed(fs)) {
    try {
      std::printf("completed: %d\n", f.get());
    } catch (const std::exception& e) {
      std::printf("completed with exception: %s\n", e.what());
    }
  }
  auto r = taskpool::wait(fs, std::chrono::seconds(1), taskpool::ReturnWhen::first_exception);
  std::printf("wait(first_exception): %zu done, %zu not done\n", r.done.size(), r.not_done.size());

  // shutdown(wait=True, cancel_futures=True)
  taskpool::ThreadPool busy(1);
  auto running = busy.submit([] { return 1; });
  auto queued = busy.submit([] { return 2; });
  busy.shutdown(taskpool::Shutdown::cancel_pending);
  std::printf("after cancel_pending: queued future %s\n", queued.cancelled() ? "cancelled" : "ran");

  // A pool whose initializer throws is broken.
  taskpool::Options o;
  o.min_threads = o.max_threads = 1;
  o.on_thread_start = [](std::size_t) { throw std::runtime_error("initializer failed"); };
  taskpool::ThreadPool broken(o);
  while (!broken.broken()) std::this_thread::yield();
  try {
    broken.submit([] {});
  } catch (const taskpool::BrokenPool& e) {
    std::printf("%s\n", e.what());
  }
}
