// bench/peers.hpp — one adapter per library, all with the same static interface, so each
// workload is a template instantiated per library (no type erasure added to anyone's hot path).
//
//   post(f)        fire and forget          wait_all()  wait until every posted task ran
//   submit(f)      a future-like with get() (kHasFutures)
//   post_batch(v)  bulk submission           (kHasBatch)
//   fork/join inside tasks                   (kCanJoinInside: waiting inside a task is safe)
// A peer lacking a primitive gets the common user-level substitute (a counter for wait_all) or,
// where none exists without deadlock, no row for that workload.
#pragma once

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <thread_pool/thread_pool.hpp>

#include "seed_pool.hpp"
#include "taskpool/taskpool.hpp"

namespace bench {

// Counts outstanding tasks for libraries without a "wait for everything" call.
class Pending {
 public:
  void add(long n = 1) { n_.fetch_add(n, std::memory_order_relaxed); }
  void done() {
    if (n_.fetch_sub(1, std::memory_order_acq_rel) == 1) n_.notify_all();
  }
  void wait() {
    for (long v = n_.load(std::memory_order_acquire); v != 0; v = n_.load(std::memory_order_acquire)) n_.wait(v);
  }

 private:
  std::atomic<long> n_{0};
};

struct Taskpool {
  static constexpr const char* kName = "taskpool";
  static constexpr bool kHasFutures = true, kHasBatch = true, kCanJoinInside = true;
  explicit Taskpool(std::size_t n) : pool(n) {}
  template <class F>
  void post(F&& f) {
    pool.post(std::forward<F>(f));
  }
  void wait_all() { pool.wait_idle(); }
  template <class F>
  auto submit(F&& f) {
    return pool.submit(std::forward<F>(f));
  }
  template <class V>
  auto submit_batch(V& v) {
    return pool.submit_batch(v);
  }
  template <class V>
  void post_batch(V& v) {
    pool.post_batch(v);
  }
  taskpool::ThreadPool pool;
};

struct Tbb {
  static constexpr const char* kName = "tbb";
  static constexpr bool kHasFutures = false, kHasBatch = false, kCanJoinInside = true;
  explicit Tbb(std::size_t n)
      : control(oneapi::tbb::global_control::max_allowed_parallelism, n + 1),
        arena(static_cast<int>(n), 0) {  // no slot reserved for masters: n workers run enqueued tasks
    arena.initialize();
  }
  template <class F>
  void post(F&& f) {
    pending.add();
    arena.enqueue([this, f = std::forward<F>(f)] {  // TBB requires a const-callable
      f();
      pending.done();
    });
  }
  void wait_all() { pending.wait(); }
  oneapi::tbb::global_control control;
  oneapi::tbb::task_arena arena;
  Pending pending;
};

struct Asio {
  static constexpr const char* kName = "asio";
  static constexpr bool kHasFutures = true, kHasBatch = false, kCanJoinInside = false;
  explicit Asio(std::size_t n) : pool(n) {}
  ~Asio() { pool.join(); }
  template <class F>
  void post(F&& f) {
    pending.add();
    boost::asio::post(pool, [this, f = std::forward<F>(f)]() mutable {
      f();
      pending.done();
    });
  }
  void wait_all() { pending.wait(); }
  template <class F>
  auto submit(F&& f) {
    return boost::asio::post(pool, boost::asio::use_future(std::forward<F>(f)));
  }
  boost::asio::thread_pool pool;
  Pending pending;
};

struct Rvaser {
  static constexpr const char* kName = "thread_pool_rvaser";
  static constexpr bool kHasFutures = true, kHasBatch = false, kCanJoinInside = false;
  explicit Rvaser(std::size_t n) : pool(n) {}
  template <class F>
  void post(F&& f) {
    pending.add();
    (void)pool.Submit([this, f = std::forward<F>(f)]() mutable {
      f();
      pending.done();
    });
  }
  void wait_all() { pending.wait(); }
  template <class F>
  auto submit(F&& f) {
    return pool.Submit(std::forward<F>(f));
  }
  thread_pool::ThreadPool pool;
  Pending pending;
};

struct Seed {
  static constexpr const char* kName = "seed_pool";
  static constexpr bool kHasFutures = true, kHasBatch = true, kCanJoinInside = false;
  explicit Seed(std::size_t n) : pool(n) {}
  template <class F>
  void post(F&& f) {
    pool.put(std::forward<F>(f));
  }
  void wait_all() { pool.join(); }
  template <class F>
  auto submit(F&& f) {
    return pool.submit(std::forward<F>(f));
  }
  template <class V>
  auto submit_batch(V& v) {
    using R = decltype(v[0]());
    std::vector<std::shared_ptr<std::packaged_task<R()>>> tasks;
    std::vector<std::future<R>> fs;
    std::vector<std::function<void()>> wrapped;
    tasks.reserve(v.size());
    fs.reserve(v.size());
    wrapped.reserve(v.size());
    for (auto& f : v) {
      tasks.push_back(std::make_shared<std::packaged_task<R()>>(f));
      fs.push_back(tasks.back()->get_future());
      wrapped.push_back([t = tasks.back()] { (*t)(); });
    }
    pool.batch_put(wrapped);
    return fs;
  }
  template <class V>
  void post_batch(V& v) {
    pool.batch_put(v);
  }
  SeedPool pool;
};

}  // namespace bench
