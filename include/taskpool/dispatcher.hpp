// taskpool/dispatcher.hpp — runs the durable task table on a ThreadPool.
//
//   auto store = taskpool::open_sqlite_store("tasks.db");
//   taskpool::ThreadPool pool(8);
//   taskpool::Dispatcher d(*store, pool);
//   d.handle("memo", [](const taskpool::TaskContext& c) { send(c.task.payload); return "sent"; });
//   d.start();            // claims due tasks, runs them, records results, reschedules
//   ...
//   d.stop(30s);          // stop claiming; let running tasks finish (then stop-request them)
//
// The claim loop sleeps until the earliest due task, or until woken: at once by add() or wake()
// in this process, and within poll_interval for rows other processes write (it compares the
// store's change_counter). Tasks are claimed in batches (at most `batch` in flight) with a lease
// that is renewed every lease/3 while they run; a run whose lease was lost is stop-requested and
// its outcome discarded (another runner owns the task). On start, expired leases of dead runners
// are recovered, so every task runs at least once. Outcomes of runs that end at about the same
// time are recorded in one transaction (group commit), which is what lets a dispatcher on SQLite
// work tens of thousands of short tasks per second.
//
// Handlers: handle(name, fn) — fn(TaskContext) returns the result text; throwing fails the run
// (retried per RetryPolicy up to the task's max_attempts). A task whose handler is not registered
// fails at once with "no handler registered for 'NAME'". exec_handler() is the built-in handler
// that runs a program (see below).
//
// Thread-safety: every member may be called from any thread. Blocking: stop() blocks up to its
// grace period plus the time handlers take to honour their stop token; start/pause/resume/wake
// and handle never block on tasks.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "taskpool/store.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool {

struct TaskContext {
  const TaskRecord& task;
  std::stop_token stop;  // requested when the dispatcher stops hard or the lease was lost
};
using Handler = std::function<std::string(const TaskContext&)>;

struct DispatcherOptions {
  std::string owner;  // lease owner name; default: host:pid:random
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);  // cross-process change check
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  std::size_t batch = 64;  // most tasks claimed and not finished at once
  RetryPolicy retry;
  // Called after each recorded run (any thread). The reports table gets the same information.
  std::function<void(const TaskRecord&, const RunResult&)> on_report;
  // One line per run ("task 12 memo done in 3 ms"); default: none.
  std::function<void(const std::string&)> log;
};

class Dispatcher {
 public:
  Dispatcher(TaskStore& store, ThreadPool& pool, DispatcherOptions opts = {});
  ~Dispatcher();  // stop(0): running tasks are stop-requested
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void handle(std::string name, Handler h);
  void start();
  // Stops claiming, waits up to `grace` for running tasks, then requests stop on them and waits
  // for them to return; claimed tasks that had not started are released unrun. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
  void pause();   // stop claiming (running tasks go on)
  void resume();
  void wake();    // look at the table now
  // store.add(t), then wake().
  std::int64_t add(const NewTask& t);

  struct Stats {
    std::uint64_t claimed = 0, succeeded = 0, failed = 0, lost_leases = 0;
    std::size_t in_flight = 0;
  };
  Stats stats() const;
  const std::string& owner() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace taskpool
