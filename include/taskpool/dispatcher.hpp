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
// in this process, and within milliseconds for rows other processes write (the store's
// wait_for_change: SQLite watches the database with inotify; poll_interval only bounds a sleep).
// It claims about what can start soon — free workers plus `prefetch` — so several dispatchers
// share the work; an attempt is counted when a run starts. Every claim carries a fencing token:
// leases are renewed every lease/3 (on the monotonic clock), and a run whose claim is gone
// (cancelled, or taken over after its lease expired) is stop-requested within a fraction of a
// second and its outcome is not recorded; a claim cancelled before its run started never starts.
// Outcomes of runs that end at about the same time are recorded in one transaction (group
// commit); a failed commit (database locked, disk full) keeps the outcomes and is retried with
// backoff while the leases are renewed. Recovery: at start and once per lease period, rows of
// runners that are provably dead (same host, pid gone or reused) go back to waiting at once, and
// rows whose lease expired go back unless their owner is provably alive, so every task runs at
// least once and a wall-clock jump does not take live runs away. stop() gives claimed-but-unstarted
// tasks back, and runs it stops after the grace period go back to waiting uncounted.
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
#include <map>
#include <memory>
#include <optional>
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

// The shortest lease a dispatcher accepts: renewal every lease/3 must stay well above the time
// a store call can take, or runs would be taken over while they run.
inline constexpr std::chrono::milliseconds kMinLease{1000};

struct DispatcherOptions {
  // Lease owner name. Default: HOST:PID:STARTTIME:RANDOM, where HOST is the host name plus a
  // digest of the boot id and pid namespace and STARTTIME is /proc/PID/stat's field 22: from it
  // a dispatcher on the same host can prove the owner dead (pid gone, or reused by a process
  // with another start time) and take its rows back at once. Another name is only lease-checked.
  std::string owner;
  // Longest sleep without looking at the store; changes by any process wake the loop sooner.
  std::chrono::milliseconds poll_interval = std::chrono::seconds(1);
  std::chrono::milliseconds lease = std::chrono::seconds(30);  // >= kMinLease; renewed every lease/3
  std::size_t batch = 64;    // most tasks claimed and not recorded at once
  std::size_t prefetch = 2;  // tasks claimed beyond the pool's free workers (ready when one frees)
  RetryPolicy retry;
  // Claim order among due tasks of one level (store.hpp, Fairness): alternate between creators
  // (the default) or groups, each one's earliest due task first, so one creator's backlog delays
  // another's task by at most one claim batch; none: earliest exec_time first.
  Fairness fairness = Fairness::creator;
  // Per-handler concurrency limits on this node: at most N runs of that handler at once (claimed
  // or running); the others stay waiting in the table, not in memory. Each N >= 1.
  std::map<std::string, std::size_t> limits;
  // Called after each recorded run (any thread). The reports table gets the same information.
  std::function<void(const TaskRecord&, const RunResult&)> on_report;
  // Nodes (docs/design.md, "Nodes and the maintenance leader"): every `heartbeat` (at most
  // lease/3) the dispatcher upserts its row in the nodes table (`taskpool nodes`) and tries to
  // lead maintenance (TaskStore::try_lead, TTL three heartbeats). Each node takes back at once
  // the rows of owners provably dead on its own host; only the leader takes back rows whose lease
  // expired, prunes (per `retention`) and deletes the rows of dead nodes. A clean stop deletes
  // the node's row and gives up the leadership.
  std::chrono::milliseconds heartbeat = std::chrono::seconds(5);
  // The leader deletes finished tasks and acknowledged reports older than this, once a minute;
  // nullopt (the default): never (`taskpool prune` does it by hand).
  std::optional<std::chrono::milliseconds> retention;
  // One line per run ("task 12 exec done in 3 ms: hello"; the first line of the output or the
  // error, capped; payloads are never logged) and per notable event; default: none.
  std::function<void(const std::string&)> log;
  // Called once per run that ended (any thread; keep it cheap, it must not throw): for metrics.
  // recorded is false when the claim was gone (the lease was lost); start_delay is how late the
  // run started after its planned time (exec_time), run_time how long the handler ran.
  struct RunEnd {
    const TaskRecord& task;
    const RunResult& result;
    bool recorded;
    std::chrono::milliseconds start_delay, run_time;
  };
  std::function<void(const RunEnd&)> on_run_end;
};

class Dispatcher {
 public:
  // Throws std::invalid_argument naming the option for batch == 0, lease < kMinLease, a limit of
  // 0 or for an unnamed handler, or a heartbeat that is not positive.
  Dispatcher(TaskStore& store, ThreadPool& pool, DispatcherOptions opts = {});
  ~Dispatcher();  // stop(0): running tasks are stop-requested
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void handle(std::string name, Handler h);
  void start();
  // Stops claiming, waits up to `grace` for running tasks, then requests stop on them and waits
  // for them to return; claimed tasks that had not started are released unrun, and a run that
  // fails after its stop request goes back to waiting with its attempt uncounted. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(30));
  void pause();   // stop claiming (running tasks go on)
  void resume();
  void wake();    // look at the table now
  // store.add(t), then wake().
  std::int64_t add(const NewTask& t);

  struct Stats {
    std::uint64_t claimed = 0, succeeded = 0, failed = 0, lost_leases = 0;
    std::uint64_t rescued = 0;       // rows recovery returned to waiting (their runner died or its lease expired)
    std::uint64_t store_errors = 0;  // failed store calls (commits retried, recoveries skipped)
    std::size_t in_flight = 0;
    bool leader = false;  // leads maintenance now (as of its last heartbeat)
  };
  Stats stats() const;
  const std::string& owner() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace taskpool
