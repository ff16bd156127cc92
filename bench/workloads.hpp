// bench/workloads.hpp — the measured workloads, each a template over a peer adapter
// (peers.hpp). Each returns its figure in the unit named by the registry in bench_main.cpp;
// lower is better for every figure. Pool construction and warm-up are outside the timed region.
#pragma once

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "peers.hpp"

namespace bench {

using clk = std::chrono::steady_clock;

struct Figure {
  double value = 0;           // the median-able figure
  double p99 = std::nan("");  // latency workloads only
};

inline double ns_since(clk::time_point t0) { return std::chrono::duration<double, std::nano>(clk::now() - t0).count(); }

template <class L>
void warm_up(L& lib, std::size_t threads) {
  for (std::size_t i = 0; i < 4 * threads; ++i) lib.post([] {});
  lib.wait_all();
}

template <class L>
Figure post_empty(std::size_t threads, std::size_t n) {
  L lib(threads);
  warm_up(lib, threads);
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) lib.post([] {});
  lib.wait_all();
  return {ns_since(t0) / static_cast<double>(n)};
}

template <class L>
Figure submit_future(std::size_t threads, std::size_t n) {
  L lib(threads);
  warm_up(lib, threads);
  using F = decltype(lib.submit([] { return 1; }));
  std::vector<F> fs;
  fs.reserve(n);
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) fs.push_back(lib.submit([] { return 1; }));
  long sum = 0;
  for (auto& f : fs) sum += f.get();
  double ns = ns_since(t0);
  if (sum != static_cast<long>(n)) std::abort();
  return {ns / static_cast<double>(n)};
}

template <class L>
Figure batch_submit(std::size_t threads, std::size_t n) {
  L lib(threads);
  warm_up(lib, threads);
  auto one = [] { return 1; };
  std::vector<decltype(one)> input(n, one);
  auto t0 = clk::now();
  auto fs = lib.submit_batch(input);
  long sum = 0;
  for (auto& f : fs) sum += f.get();
  double ns = ns_since(t0);
  if (sum != static_cast<long>(n)) std::abort();
  return {ns / static_cast<double>(n)};
}

// ---- fork/join (only libraries where waiting inside a task is safe) ----

inline long fib_tp(taskpool::ThreadPool& p, int n) {
  if (n < 2) return n;
  auto a = p.submit([&p, n] { return fib_tp(p, n - 1); });
  long b = fib_tp(p, n - 2);
  return a.get() + b;
}
inline long fib_tbb(int n) {
  if (n < 2) return n;
  long a = 0, b = 0;
  oneapi::tbb::task_group g;
  g.run([&] { a = fib_tbb(n - 1); });
  b = fib_tbb(n - 2);
  g.wait();
  return a + b;
}
inline long skynet_tp(taskpool::ThreadPool& p, long num, long size) {
  if (size == 1) return num;
  std::array<taskpool::Future<long>, 10> fs;
  for (long i = 0; i < 10; ++i) fs[static_cast<std::size_t>(i)] = p.submit([&p, num, size, i] { return skynet_tp(p, num + i * (size / 10), size / 10); });
  long sum = 0;
  for (auto& f : fs) sum += f.get();
  return sum;
}
inline long skynet_tbb(long num, long size) {
  if (size == 1) return num;
  std::array<long, 10> r{};
  oneapi::tbb::task_group g;
  for (long i = 0; i < 10; ++i) g.run([&r, num, size, i] { r[static_cast<std::size_t>(i)] = skynet_tbb(num + i * (size / 10), size / 10); });
  g.wait();
  long sum = 0;
  for (long x : r) sum += x;
  return sum;
}

inline long fib_ref(int n) { return n < 2 ? n : fib_ref(n - 1) + fib_ref(n - 2); }

// Times one recursive fork/join computation: `tp(pool)` run as a task on taskpool, or `tbb()`
// inside an arena of `threads` (the caller joins as one of them); both warmed up first. Aborts
// unless the result is `expect`.
template <class L, class Tp, class TbbFn>
Figure time_fork_join(std::size_t threads, long expect, Tp tp, TbbFn tbb) {
  long r = 0;
  double ms;
  if constexpr (std::is_same_v<L, Taskpool>) {
    L lib(threads);
    warm_up(lib, threads);
    auto t0 = clk::now();
    r = lib.pool.submit([&] { return tp(lib.pool); }).get();
    ms = ns_since(t0) / 1e6;
  } else {
    oneapi::tbb::global_control c(oneapi::tbb::global_control::max_allowed_parallelism, threads);
    oneapi::tbb::task_arena arena(static_cast<int>(threads));
    arena.execute([] { fib_tbb(10); });
    auto t0 = clk::now();
    arena.execute([&] { r = tbb(); });
    ms = ns_since(t0) / 1e6;
  }
  if (r != expect) std::abort();
  return {ms};
}

template <class L>
Figure fork_join_fib(std::size_t threads, int n) {
  return time_fork_join<L>(threads, fib_ref(n), [n](taskpool::ThreadPool& p) { return fib_tp(p, n); },
                           [n] { return fib_tbb(n); });
}

template <class L>
Figure fan_out_in(std::size_t threads, long leaves) {
  return time_fork_join<L>(threads, leaves * (leaves - 1) / 2,
                           [leaves](taskpool::ThreadPool& p) { return skynet_tp(p, 0, leaves); },
                           [leaves] { return skynet_tbb(0, leaves); });
}

// ---- data parallel ----

template <class L>
Figure parallel_for(std::size_t threads, std::size_t n) {
  std::vector<float> data(n, 1.0f);
  constexpr std::size_t grain = 100'000;
  auto body = [&data](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) data[i] = data[i] * 1.000001f + 0.5f;
  };
  double ms;
  if constexpr (std::is_same_v<L, Tbb>) {
    oneapi::tbb::global_control c(oneapi::tbb::global_control::max_allowed_parallelism, threads);
    oneapi::tbb::task_arena arena(static_cast<int>(threads));
    auto t0 = clk::now();
    arena.execute([&] {
      oneapi::tbb::parallel_for(oneapi::tbb::blocked_range<std::size_t>(0, n, grain),
                                [&](const oneapi::tbb::blocked_range<std::size_t>& r) { body(r.begin(), r.end()); });
    });
    ms = ns_since(t0) / 1e6;
  } else if constexpr (std::is_same_v<L, Taskpool>) {
    // Like TBB's: the calling thread runs chunks too, with at most `threads` runners in all.
    L lib(threads);
    warm_up(lib, threads);
    auto t0 = clk::now();
    lib.pool.parallel_for(std::size_t{0}, n, grain, body);
    ms = ns_since(t0) / 1e6;
  } else {
    L lib(threads);
    warm_up(lib, threads);
    auto t0 = clk::now();
    if constexpr (L::kHasBatch) {
      std::vector<std::function<void()>> chunks;
      for (std::size_t b = 0; b < n; b += grain) chunks.push_back([&body, b, n] { body(b, std::min(n, b + grain)); });
      lib.post_batch(chunks);
    } else {
      for (std::size_t b = 0; b < n; b += grain) lib.post([&body, b, n] { body(b, std::min(n, b + grain)); });
    }
    lib.wait_all();
    ms = ns_since(t0) / 1e6;
  }
  const float expect = 1.0f * 1.000001f + 0.5f;
  for (float x : data)
    if (x != expect) std::abort();  // every element processed exactly once
  return {ms};
}

// ---- latency ----

template <class L>
Figure ping_pong(std::size_t threads, std::size_t rounds) {
  L lib(threads);
  warm_up(lib, threads);
  std::vector<double> us;
  us.reserve(rounds);
  for (std::size_t k = 0; k < rounds; ++k) {
    auto t0 = clk::now();
    if constexpr (L::kHasFutures) {
      lib.submit([] { return 1; }).get();
    } else {
      std::atomic<int> flag{0};
      lib.post([&flag] {
        flag.store(1, std::memory_order_release);
        flag.notify_one();
      });
      flag.wait(0, std::memory_order_acquire);
    }
    us.push_back(ns_since(t0) / 1e3);
  }
  std::sort(us.begin(), us.end());
  return {us[us.size() / 2], us[us.size() * 99 / 100]};
}

template <class L>
Figure many_producers(std::size_t threads, std::size_t n) {
  L lib(threads);
  warm_up(lib, threads);
  const std::size_t producers = std::max<std::size_t>(1, std::thread::hardware_concurrency());
  const std::size_t each = n / producers;
  std::barrier start(static_cast<std::ptrdiff_t>(producers + 1));
  std::vector<std::thread> ts;
  for (std::size_t p = 0; p < producers; ++p) ts.emplace_back([&] {
      start.arrive_and_wait();
      for (std::size_t i = 0; i < each; ++i) lib.post([] {});
    });
  start.arrive_and_wait();
  auto t0 = clk::now();
  for (auto& t : ts) t.join();
  lib.wait_all();
  return {ns_since(t0) / static_cast<double>(each * producers)};
}

// ---- resources ----

inline double cpu_ms(int who) {
  rusage ru{};
  getrusage(who, &ru);
  return (static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}
// CPU time of every thread but the calling one.
inline double others_cpu_ms() { return cpu_ms(RUSAGE_SELF) - cpu_ms(RUSAGE_THREAD); }

// CPU milliseconds an idle pool burns over 2 s (measured over `seconds`, scaled to 2 s): the
// process's CPU time minus the measuring thread's own, in a fresh process (bench_main.cpp).
template <class L>
Figure idle_cpu(std::size_t threads, double seconds) {
  L lib(threads);
  warm_up(lib, threads);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let spinning end
  double c0 = others_cpu_ms();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  // Two readings of a clock with 1 us resolution: clamp the rounding below zero.
  return {std::max(0.0, others_cpu_ms() - c0) * (2.0 / seconds)};
}

inline long rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Bytes of RSS per queued small task, all workers blocked.
template <class L>
Figure queued_memory(std::size_t threads, std::size_t n) {
  L lib(threads);
  warm_up(lib, threads);
  std::atomic<bool> open{false};
  std::atomic<std::size_t> blocked{0};
  for (std::size_t i = 0; i < threads; ++i) lib.post([&] {
      blocked.fetch_add(1);
      while (!open.load(std::memory_order_acquire)) std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
  // Bounded: a pool without stealing (libthread-pool) can leave a blocker queued behind another
  // while a worker sleeps; the workers are then busy or asleep either way, which is all we need.
  auto give_up = clk::now() + std::chrono::seconds(2);
  while (blocked.load() < threads && clk::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  malloc_trim(0);
  long r0 = rss_bytes();
  std::atomic<long> sink{0};
  for (std::size_t i = 0; i < n; ++i) lib.post([&sink, i] { sink.fetch_add(static_cast<long>(i & 1), std::memory_order_relaxed); });
  long r1 = rss_bytes();
  open.store(true, std::memory_order_release);
  lib.wait_all();
  return {static_cast<double>(r1 - r0) / static_cast<double>(n)};
}

// ---- timers ----

template <class L>
Figure timer_insert_cancel(std::size_t n) {
  if constexpr (std::is_same_v<L, Taskpool>) {
    taskpool::ThreadPool pool(1);
    taskpool::Scheduler sched(pool);
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n; ++i) {
      auto h = sched.schedule_after(std::chrono::hours(1), [] {});
      h.cancel();
    }
    return {ns_since(t0) / static_cast<double>(n)};
  } else {
    boost::asio::io_context ctx;
    std::size_t aborted = 0;
    auto t0 = clk::now();
    for (std::size_t i = 0; i < n; ++i) {
      boost::asio::steady_timer t(ctx);
      t.expires_after(std::chrono::hours(1));
      t.async_wait([&](const boost::system::error_code& ec) { aborted += ec ? 1 : 0; });
      t.cancel();
    }
    ctx.run();
    double ns = ns_since(t0);
    if (aborted != n) std::abort();
    return {ns / static_cast<double>(n)};
  }
}

// Firing lateness (start of the task minus its deadline) while every worker is kept busy by
// self-reposting 50 µs tasks. Timers fire at the highest priority / straight onto the pool.
template <class L>
Figure timer_lateness(std::size_t threads, std::size_t timers, std::chrono::milliseconds spread) {
  std::atomic<bool> stop{false};
  std::vector<double> late_us(timers);
  std::atomic<std::size_t> fired{0};
  auto spin = [] {
    auto until = clk::now() + std::chrono::microseconds(50);
    while (clk::now() < until) {
    }
  };
  std::mt19937 rng(11);
  std::vector<clk::duration> offsets(timers);
  for (auto& o : offsets) o = std::chrono::microseconds(1000 + rng() % static_cast<unsigned>(spread.count() * 1000));
  if constexpr (std::is_same_v<L, Taskpool>) {
    taskpool::ThreadPool pool(threads);
    std::function<void()> load = [&] {
      spin();
      if (!stop.load(std::memory_order_relaxed)) pool.post(load);
    };
    for (std::size_t i = 0; i < threads; ++i) pool.post(load);
    taskpool::SchedulerOptions so;
    so.priority = taskpool::Priority{9};
    taskpool::Scheduler sched(pool, so);
    auto base = clk::now();
    for (std::size_t i = 0; i < timers; ++i) {
      auto due = base + offsets[i];
      sched.schedule_at(due, [&, i, due] {
        late_us[i] = std::chrono::duration<double, std::micro>(clk::now() - due).count();
        fired.fetch_add(1);
      });
    }
    while (fired.load() < timers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop = true;
    pool.wait_idle();
  } else {
    boost::asio::thread_pool pool(threads);
    std::function<void()> load = [&] {
      spin();
      if (!stop.load(std::memory_order_relaxed)) boost::asio::post(pool, load);
    };
    for (std::size_t i = 0; i < threads; ++i) boost::asio::post(pool, load);
    boost::asio::io_context ctx;
    auto guard = boost::asio::make_work_guard(ctx);
    std::thread timer_thread([&] { ctx.run(); });
    std::vector<std::unique_ptr<boost::asio::steady_timer>> ts;
    auto base = clk::now();
    for (std::size_t i = 0; i < timers; ++i) {
      auto due = base + offsets[i];
      ts.push_back(std::make_unique<boost::asio::steady_timer>(ctx, due));
      ts.back()->async_wait([&, i, due](const boost::system::error_code&) {
        boost::asio::post(pool, [&, i, due] {
          late_us[i] = std::chrono::duration<double, std::micro>(clk::now() - due).count();
          fired.fetch_add(1);
        });
      });
    }
    while (fired.load() < timers) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop = true;
    guard.reset();
    timer_thread.join();
    pool.join();
  }
  std::sort(late_us.begin(), late_us.end());
  return {late_us[timers / 2], late_us[timers * 99 / 100]};
}

}  // namespace bench
