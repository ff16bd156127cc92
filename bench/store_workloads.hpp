// bench/store_workloads.hpp — the durable layer: inserts, dispatch throughput and the time from
// a task falling due to its handler starting. taskpool only (no peer has a durable table).
// Each measurement uses a fresh database file in a temporary directory.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "taskpool/taskpool.hpp"
#include "workloads.hpp"

namespace bench {

class TempDb {
 public:
  TempDb() {
    static std::atomic<int> n{0};
    dir_ = std::filesystem::temp_directory_path() / ("taskpool-bench-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
    std::filesystem::create_directories(dir_);
  }
  ~TempDb() { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "bench.db").string(); }

 private:
  std::filesystem::path dir_;
};

inline taskpool::NewTask noop_task() {
  taskpool::NewTask t;
  t.creator_id = "bench";
  t.task_type = "noop";
  return t;
}

// µs per task, one transaction per insert.
inline Figure store_insert(std::size_t n) {
  TempDb db;
  auto store = taskpool::open_sqlite_store(db.path());
  auto t = noop_task();
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) store->add(t);
  return {ns_since(t0) / 1e3 / static_cast<double>(n)};
}

// µs per task, batches of 1000 in one transaction each.
inline Figure store_insert_batch(std::size_t n) {
  TempDb db;
  auto store = taskpool::open_sqlite_store(db.path());
  std::vector<taskpool::NewTask> batch(1000, noop_task());
  auto t0 = clk::now();
  for (std::size_t done = 0; done < n; done += batch.size()) store->add_batch(batch);
  return {ns_since(t0) / 1e3 / static_cast<double>(n)};
}

// µs per no-op task claimed, run and completed by a dispatcher. The tasks come from `creators`
// creators (round robin); `fairness` is the claim order; `limit` > 0 caps the noop handler's
// concurrent runs (DispatcherOptions::limits).
inline Figure dispatch_noop(std::size_t threads, std::size_t n, std::size_t creators = 1,
                            taskpool::Fairness fairness = taskpool::Fairness::creator, std::size_t limit = 0) {
  TempDb db;
  auto store = taskpool::open_sqlite_store(db.path());
  std::vector<taskpool::NewTask> batch(n, noop_task());
  if (creators > 1)
    for (std::size_t i = 0; i < n; ++i) batch[i].creator_id = "c" + std::to_string(i % creators);
  store->add_batch(batch);
  taskpool::ThreadPool pool(threads);
  taskpool::DispatcherOptions o;
  o.batch = 256;
  o.prefetch = 256;  // throughput, not fair sharing between daemons: claim big batches
  o.fairness = fairness;
  if (limit > 0) o.limits = {{"noop", limit}};
  taskpool::Dispatcher d(*store, pool, o);
  std::atomic<std::size_t> ran{0};
  d.handle("noop", [&](const taskpool::TaskContext&) {
    ran.fetch_add(1);
    return std::string();
  });
  auto t0 = clk::now();
  d.start();
  while (d.stats().succeeded < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
  double us = ns_since(t0) / 1e3 / static_cast<double>(n);
  d.stop();
  return {us};
}

// ms from "due" (inserted due now, into an idle dispatcher) to the handler starting, p50 and p99.
// In-process inserts go through Dispatcher::add (which wakes the loop); out-of-process ones
// through a second connection, noticed by the store's wait_for_change (inotify on the database's -wal file), with
// the default poll interval (1 s: it only bounds a sleep).
inline Figure due_to_start(std::size_t threads, std::size_t samples, bool in_process) {
  TempDb db;
  auto store = taskpool::open_sqlite_store(db.path());
  auto writer = taskpool::open_sqlite_store(db.path());
  taskpool::ThreadPool pool(threads);
  taskpool::DispatcherOptions o;  // the default poll interval
  taskpool::Dispatcher d(*store, pool, o);
  std::mutex mu;
  std::condition_variable cv;
  std::optional<clk::time_point> started;  // guarded by mu
  d.handle("probe", [&](const taskpool::TaskContext&) {
    std::lock_guard lk(mu);
    started = clk::now();
    cv.notify_all();
    return std::string();
  });
  d.start();
  std::vector<double> ms;
  taskpool::NewTask t = noop_task();
  t.exec_task = "probe";
  for (std::size_t i = 0; i < samples; ++i) {
    {
      std::lock_guard lk(mu);
      started.reset();
    }
    auto t0 = clk::now();
    t.exec_time = std::chrono::system_clock::now();
    if (in_process) {
      d.add(t);
    } else {
      writer->add(t);
    }
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return started.has_value(); });
    ms.push_back(std::chrono::duration<double, std::milli>(*started - t0).count());
    lk.unlock();
    // Untimed: let the run be recorded and the loop fall asleep, so the next insert meets an
    // idle dispatcher (back to back, it would often still be awake from recording this run).
    while (d.stats().succeeded <= i) std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  d.stop();
  std::sort(ms.begin(), ms.end());
  return {ms[ms.size() / 2], ms[ms.size() * 99 / 100]};
}

}  // namespace bench
