// bench/store_workloads.hpp — the durable layer: inserts, dispatch throughput and the time from
// a task falling due to its handler starting. taskpool only (no peer has a durable table).
// Each measurement uses a fresh database: a file in a temporary directory (SQLite), or a fresh
// schema (`?schema=`) on the server TASKPOOL_BENCH_PG names (PostgreSQL; the rows ending in _pg).
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "taskpool/taskpool.hpp"
#include "workloads.hpp"

namespace bench {

enum class Backend { sqlite, postgres };

// The PostgreSQL server of the _pg rows ("" = none).
inline std::string bench_pg() {
  const char* v = std::getenv("TASKPOOL_BENCH_PG");
  return v ? v : "";
}

// A fresh database: a file in a temporary directory, or a new schema on TASKPOOL_BENCH_PG.
class TempDb {
 public:
  explicit TempDb(Backend b = Backend::sqlite) {
    static std::atomic<int> n{0};
    const std::string name = "taskpool-bench-" + std::to_string(::getpid()) + "-" + std::to_string(n++);
    if (b == Backend::postgres) {
      std::string base = bench_pg();
      std::string schema = name;
      for (char& c : schema)
        if (c == '-') c = '_';
      db_ = base + (base.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema;
      return;
    }
    dir_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::create_directories(dir_);
    db_ = (dir_ / "bench.db").string();
  }
  ~TempDb() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  const std::string& path() const { return db_; }
  std::unique_ptr<taskpool::TaskStore> open() const {
    return taskpool::open_store(db_);  // a path or a postgresql:// URI
  }

 private:
  std::filesystem::path dir_;
  std::string db_;
};

inline taskpool::NewTask noop_task() {
  taskpool::NewTask t;
  t.creator_id = "bench";
  t.task_type = "noop";
  return t;
}

// µs per task, one transaction per insert.
inline Figure store_insert(std::size_t n, Backend b = Backend::sqlite) {
  TempDb db(b);
  auto store = db.open();
  auto t = noop_task();
  auto t0 = clk::now();
  for (std::size_t i = 0; i < n; ++i) store->add(t);
  return {ns_since(t0) / 1e3 / static_cast<double>(n)};
}

// µs per task, batches of 1000 in one transaction each.
inline Figure store_insert_batch(std::size_t n, Backend b = Backend::sqlite) {
  TempDb db(b);
  auto store = db.open();
  std::vector<taskpool::NewTask> batch(1000, noop_task());
  auto t0 = clk::now();
  for (std::size_t done = 0; done < n; done += batch.size()) store->add_batch(batch);
  return {ns_since(t0) / 1e3 / static_cast<double>(n)};
}

// µs per no-op task claimed, run and completed by `nodes` dispatchers (each with its own store
// connection and a pool of `threads`, as separate daemons would have) working one table. The
// tasks come from `creators` creators (round robin); `fairness` is the claim order; `limit` > 0
// caps the noop handler's concurrent runs per node (DispatcherOptions::limits).
struct NoopShape {
  Backend backend = Backend::sqlite;
  std::size_t nodes = 1, creators = 1;
  taskpool::Fairness fairness = taskpool::Fairness::creator;
  std::size_t limit = 0;
};
inline Figure dispatch_noop(std::size_t threads, std::size_t n, NoopShape shape = {}) {
  const std::size_t creators = shape.creators, nodes = shape.nodes;
  TempDb db(shape.backend);
  auto store = db.open();
  std::vector<taskpool::NewTask> batch(n, noop_task());
  if (creators > 1)
    for (std::size_t i = 0; i < n; ++i) batch[i].creator_id = "c" + std::to_string(i % creators);
  store->add_batch(batch);
  struct Node {
    std::unique_ptr<taskpool::TaskStore> store;
    std::unique_ptr<taskpool::ThreadPool> pool;
    std::unique_ptr<taskpool::Dispatcher> d;
  };
  std::vector<Node> ns(nodes);
  std::atomic<std::size_t> ran{0};
  for (auto& node : ns) {
    node.store = db.open();
    node.pool = std::make_unique<taskpool::ThreadPool>(threads);
    taskpool::DispatcherOptions o;
    o.batch = 256;
    o.prefetch = 256;  // throughput, not fair sharing between daemons: claim big batches
    o.fairness = shape.fairness;
    if (shape.limit > 0) o.limits = {{"noop", shape.limit}};
    node.d = std::make_unique<taskpool::Dispatcher>(*node.store, *node.pool, o);
    node.d->handle("noop", [&](const taskpool::TaskContext&) {
      ran.fetch_add(1);
      return std::string();
    });
  }
  auto succeeded = [&] {
    std::uint64_t s = 0;
    for (auto& node : ns) s += node.d->stats().succeeded;
    return s;
  };
  auto t0 = clk::now();
  for (auto& node : ns) node.d->start();
  while (succeeded() < n) std::this_thread::sleep_for(std::chrono::microseconds(200));
  double us = ns_since(t0) / 1e3 / static_cast<double>(n);
  for (auto& node : ns) node.d->stop();
  return {us};
}

// ms from "due" (inserted due now, into an idle dispatcher) to the handler starting, p50 and p99.
// In-process inserts go through Dispatcher::add (which wakes the loop); out-of-process ones
// through a second connection, noticed by the store's wait_for_change (inotify on the database's -wal file), with
// the default poll interval (1 s: it only bounds a sleep). The second connection stands for
// another node (PostgreSQL: its NOTIFY wakes this one).
inline Figure due_to_start(std::size_t threads, std::size_t samples, bool in_process, Backend b = Backend::sqlite) {
  TempDb db(b);
  auto store = db.open();
  auto writer = db.open();
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
