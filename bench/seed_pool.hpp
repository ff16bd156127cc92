// bench/seed_pool.hpp — the baseline users would otherwise write: a faithful C++ port of the
// origin notes' pool design. One mutex and condition variable, a deque of std::function, futures
// from std::packaged_task, put/batch_put and a join() that waits for an empty queue and idle
// workers. Deliberately plain: it is the yardstick, not a competitor to tune.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace bench {

class SeedPool {
 public:
  explicit SeedPool(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) threads_.emplace_back([this] { work(); });
  }
  ~SeedPool() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
  }
  void put(std::function<void()> f) {
    {
      std::lock_guard lk(mu_);
      q_.push_back(std::move(f));
    }
    cv_.notify_one();
  }
  template <class Range>
  void batch_put(Range& fs) {
    {
      std::lock_guard lk(mu_);
      for (auto& f : fs) q_.emplace_back(f);
    }
    cv_.notify_all();
  }
  template <class F>
  auto submit(F f) -> std::future<decltype(f())> {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto fut = task->get_future();
    put([task] { (*task)(); });
    return fut;
  }
  void join() {
    std::unique_lock lk(mu_);
    idle_cv_.wait(lk, [&] { return q_.empty() && busy_ == 0; });
  }

 private:
  void work() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || !q_.empty(); });
      if (q_.empty()) return;
      auto f = std::move(q_.front());
      q_.pop_front();
      ++busy_;
      lk.unlock();
      f();
      lk.lock();
      --busy_;
      if (q_.empty() && busy_ == 0) idle_cv_.notify_all();
    }
  }
  std::mutex mu_;  // guards q_, busy_, stop_
  std::condition_variable cv_, idle_cv_;
  std::deque<std::function<void()>> q_;
  std::size_t busy_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace bench
