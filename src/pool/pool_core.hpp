// src/pool/pool_core.hpp — the engine behind taskpool::ThreadPool (private).
//
// Design note (see also docs/design.md).
// Queues.
//   - Injection lists: one intrusive FIFO list per priority level, each under its own mutex
//     (Level::mu). External submissions append to the list of their level; nonempty_ holds one bit
//     per non-empty level so a worker finds the highest level with one load. A worker takes a
//     share of a list at once (up to kMaxBatch, about size/threads), runs the first task and moves
//     the rest to its own deque, so the lists see one lock per batch, not per task.
//   - Worker deques (work_stealing_deque.hpp): tasks submitted by a running task and moved batches.
// Fairness within a level: a worker's deque is LIFO for its owner (locality for fork/join), so
//   every kFairInterval-th look a task pushed by a running task yields to the oldest work of its
//   level - the shared list, then the steal end of the deque (find_task). Tasks re-posting
//   themselves on every worker therefore cannot starve other tasks of their level.
// Priority policy: a worker's deque holds tasks of one level at a time (local_level); a task
//   submitted by a running task at another level goes to the shared list of its level, and a
//   batch moves into the deque only when that keeps it single-level. Before popping its deque a
//   worker checks nonempty_: a higher queued level goes first. So among queued tasks the highest
//   level always starts first, and a stream of low-priority children cannot bury high-priority
//   work under them. Strict: a lower level starts only when no higher level is queued; no aging.
// Sleeping: EventCount ec_ (see event_count.hpp). Every publication of work is followed by a
//   notification (submissions: notify_one_after_publish, a plain load ordered by the sleepers'
//   heavy barrier); a worker re-checks every queue between prepare_wait() and wait().
// Thread count: threads_ (live workers) and idle_ (workers not running a task) are atomics
//   changed with seq_cst RMWs. A submitter, after its notification, spawns a thread when
//   idle_ == 0 and threads_ < max. A worker retiring (idle timeout or shrink) first decrements
//   both, then does a prepare_wait()/re-check/cancel_wait(): by the EventCount argument (the heavy
//   barrier in prepare_wait orders the submitter's publication before its read of idle_) either it
//   sees the new task (and stays) or the submitter sees idle_ == 0 (and spawns); go_busy's check
//   for the last idle worker runs the same barrier. So no task is ever stranded.
// Start failures (no thread, no memory for a worker slot) never escape a submission whose tasks
//   are queued (maybe_spawn is noexcept). A submission that finds threads_ == 0 starts a worker
//   before queueing, and throws ThreadStartFailed, having queued nothing, when it cannot. Any
//   start that fails and leaves threads_ == 0 (read under threads_mu_) makes the failing thread
//   run the queued work itself (run_stranded): the last worker may have retired after its final
//   check, and submitters that read the counts during the failed start (which counts its thread
//   before it exists) returned without starting one. With threads_ > 0 read after the
//   publication, the argument above shows a live worker will see the work. So every queued task
//   has a worker that will see it or a thread, still inside the pool's call, that starts one or
//   runs it: close() only waits for idle, it never drops work.
//   A worker whose final check could not be ordered (its heavy barrier failed) does not retire.
// Idle detection (wait_idle, close): per-slot counters written only by their worker. The pool is
//   idle when  sum(finished) == sum(submitted), reading every `finished` first and every
//   `submitted` second. Counters only grow and a task is counted submitted before it can finish
//   (a child before its parent finishes), so  sum(finished read) <= finished(T) <= submitted(T) <=
//   sum(submitted read)  for the instant T between the two passes: equality means nothing was
//   queued or running at T. A worker publishes `finished` with a seq_cst store when it goes idle,
//   then loads idle_waiters_ (seq_cst): with the waiter's seq_cst increment of idle_waiters_
//   before its check, one of the two always sees the other (Dekker), so waiters are woken.
// Locks (checked by Clang's -Wthread-safety, detail/thread_annotations.hpp): Level::mu (a
//   SpinLock) guards its list; threads_mu_ slot creation, joins and the spawn error; shutdown_mu_
//   serializes shutdown(); hooks_mu_ the close hooks; due_mu_ the due sources (and is held while
//   a worker fires them); space_mu_ pairs with space_cv_ for blocked submitters; broken_mu_
//   serializes mark_broken. No lock is held while a task runs. Order: shutdown_mu_ (held across
//   shutdown(), close hooks included) before all others; due_mu_ (held while due timers are
//   launched, which submits) before the submission path's Level::mu, space_mu_ and threads_mu_;
//   every other lock is a leaf (no pool lock is taken while it is held).
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <thread>
#include <vector>

#include "pool/event_count.hpp"
#include "pool/spin_lock.hpp"
#include "pool/work_stealing_deque.hpp"
#include "taskpool/detail/pool_access.hpp"
#include "taskpool/detail/task_node.hpp"
#include "taskpool/detail/thread_annotations.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool::detail {

class PoolCore;

// Counter written by one thread only; others read it. A store, not an RMW, on the hot path.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

struct alignas(64) Worker {
  PoolCore* pool = nullptr;
  std::size_t index = 0;
  WorkStealingDeque deque;
  // Owner-thread state.
  int local_level = -1;  // the one level of the tasks in `deque` (meaningful while non-empty)
  bool idle = true;      // counted in PoolCore::idle_
  std::uint64_t rng = 0;
  std::uint32_t looks = 0;  // find_task calls, for the fairness interval
  RunContext* ctx = nullptr;  // the worker loop's context, reused when helping (owner only)
  std::chrono::steady_clock::time_point idle_since{};
  // Slot management, guarded by PoolCore::threads_mu_ (not annotated: the analysis cannot tie
  // `pool` to the PoolCore whose lock is held).
  std::thread thread;
  std::atomic<bool> live{false};  // a thread owns this slot (cleared by the thread as it ends)
  // Counters: written only by the slot's current thread (bump), read by anyone.
  std::atomic<std::uint64_t> finished{0};            // popped tasks finished in any way
  std::atomic<std::uint64_t> in_task{0};             // tasks executing now (nested when helping)
  std::atomic<std::uint64_t> completed{0}, failed{0}, cancelled{0};
  std::atomic<std::uint64_t> internal_submitted{0};  // tasks pushed to this deque by submission
  std::array<std::atomic<std::uint64_t>, kPriorityLevels> local_in{}, local_out{};
};

class PoolCore {
 public:
  enum Phase : int { kOpen = 0, kDraining = 1, kCancelling = 2, kBroken = 3 };
  static constexpr std::size_t kMaxWorkers = ThreadPool::max_supported_threads();
  static constexpr std::size_t kMaxBatch = 32;
  static constexpr std::uint32_t kFairInterval = 61;  // prime: does not beat with task patterns

  PoolCore(ThreadPool* owner, Options opts);
  ~PoolCore();

  EnqueueStatus enqueue(TaskNode* node, Admission a, std::chrono::steady_clock::time_point deadline);
  EnqueueStatus enqueue_batch(TaskNode** nodes, std::size_t n, Admission a, std::chrono::steady_clock::time_point deadline);
  bool wait_idle_until(std::chrono::steady_clock::time_point deadline, bool from_shutdown = false);
  void shutdown(Shutdown how) TP_EXCLUDES(shutdown_mu_, hooks_mu_, threads_mu_, space_mu_);
  void resize(std::size_t min_threads, std::size_t max_threads) TP_EXCLUDES(threads_mu_);
  Stats stats() const;
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }
  bool broken() const noexcept { return broken_.load(std::memory_order_acquire); }
  std::size_t max_threads() const noexcept { return max_threads_.load(std::memory_order_relaxed); }
  [[noreturn]] void throw_closed_or_broken() const;
  ThreadPool* owner() const noexcept { return owner_; }
  std::size_t add_close_hook(std::function<void()> hook) TP_EXCLUDES(hooks_mu_);
  void remove_close_hook(std::size_t id) TP_EXCLUDES(hooks_mu_);
  void add_due_source(DueSource* s) TP_EXCLUDES(due_mu_);
  void remove_due_source(DueSource* s) TP_EXCLUDES(due_mu_);
  void note_due(std::chrono::steady_clock::time_point t) noexcept;
  bool on_own_worker() const noexcept;
  int wakeup_protocol() const noexcept { return ec_.protocol(); }  // PoolAccess, for tests
  std::size_t sleeping_workers() const noexcept { return ec_.waiters(); }
  std::size_t idle_waiters() const noexcept { return idle_waiters_.load(std::memory_order_relaxed); }

  // Runs one queued task on the calling worker `w` if there is one (Future::wait helping).
  bool help_one(Worker* w);

 private:
  struct alignas(64) Level {
    SpinLock mu;
    TaskNode* head TP_GUARDED_BY(mu) = nullptr;
    TaskNode* tail TP_GUARDED_BY(mu) = nullptr;
    std::atomic<std::size_t> size{0};      // written under mu; read anywhere
    std::atomic<std::uint64_t> pushed{0};  // written under mu; tasks ever appended by submitters
  };

  void worker_main(Worker* w);
  TaskNode* find_task(Worker* w, bool helping = false);
  EnqueueStatus enqueue_batch_from(Worker* w, TaskNode** nodes, std::size_t n, Admission a,
                                   std::chrono::steady_clock::time_point deadline);
  // Tasks submitted by a task running on `w` (a bounded pool's capacity already reserved).
  EnqueueStatus enqueue_internal(Worker* w, TaskNode** nodes, std::size_t n);
  EnqueueStatus enqueue_external_one(Worker* w, TaskNode* node, Admission a, std::chrono::steady_clock::time_point deadline);
  TaskNode* pop_global(Worker* w, int level);
  TaskNode* steal(Worker* w);
  void execute(Worker* w, TaskNode* t, RunContext& ctx);
  void fire_timers() noexcept TP_EXCLUDES(due_mu_);
  void go_busy(Worker* w) noexcept;
  void go_idle(Worker* w) noexcept;
  bool try_retire(Worker* w, std::size_t floor, TaskNode*& found, bool& searching);
  void drain_local_to_global(Worker* w);
  void push_global_chain(int level, TaskNode* head, TaskNode* tail, std::size_t n, bool count_submitted);
  void push_global_one(TaskNode* t) noexcept;  // a task of a running one, not into its deque
  void after_publish() noexcept;
  void maybe_spawn() noexcept;
  void spawn_for_work() noexcept TP_EXCLUDES(threads_mu_);
  std::exception_ptr start_first_worker() noexcept TP_EXCLUDES(threads_mu_);
  // started, or refused (shutting down, or no free slot), or failed (spawn_error_ says why).
  enum class Spawn : unsigned char { started, refused, failed };
  Spawn spawn_one_locked() noexcept TP_REQUIRES(threads_mu_);
  bool spawn_failed_locked() noexcept TP_REQUIRES(threads_mu_);  // true: call run_stranded() unlocked
  void stop_workers() noexcept TP_EXCLUDES(threads_mu_);
  void close_lists() noexcept;  // sets closed_ with every Level::mu held
  void run_stranded() noexcept;
  TaskNode* pop_one_global() noexcept;
  bool is_idle() const noexcept;
  bool has_queued_work() const noexcept;
  void notify_idle_waiters() noexcept;
  EnqueueStatus reserve(std::size_t n, bool internal, Admission a, std::chrono::steady_clock::time_point deadline)
      TP_EXCLUDES(space_mu_);
  void release_capacity(std::size_t n) noexcept TP_EXCLUDES(space_mu_);
  void run_inline(TaskNode* node);
  void sweep_global(std::exception_ptr why);
  void discard_popped(Worker* w, TaskNode* t);
  std::exception_ptr discard_reason() const noexcept;
  void mark_broken(std::exception_ptr cause) TP_EXCLUDES(broken_mu_, space_mu_);
  void report_error(std::exception_ptr e) noexcept;

  ThreadPool* const owner_;
  const Options opts_;
  const bool bounded_;

  std::array<Level, kPriorityLevels> levels_;
  alignas(64) std::atomic<std::uint32_t> nonempty_{0};  // bit l: levels_[l] has tasks
  EventCount ec_;

  // Thread management. No thread starts once stopping_ is set (checked under threads_mu_, which
  // shutdown takes to join after setting it), so shutdown joins every thread ever started.
  Mutex threads_mu_;  // guards slot creation/reuse, Worker::thread, joins, spawn_*_
  std::exception_ptr spawn_error_ TP_GUARDED_BY(threads_mu_);  // why the last failed start failed
  bool spawn_failing_ TP_GUARDED_BY(threads_mu_) = false;      // reported; cleared by a start
  std::array<std::atomic<Worker*>, kMaxWorkers> slots_{};
  std::array<std::unique_ptr<Worker>, kMaxWorkers> owned_ TP_GUARDED_BY(threads_mu_);
  std::atomic<std::size_t> slot_high_{0};                   // slots [0, slot_high_) may be used
  alignas(64) std::atomic<std::size_t> threads_{0};
  std::atomic<std::size_t> idle_{0};
  std::atomic<std::size_t> min_threads_, max_threads_;

  // Lifecycle.
  std::atomic<bool> closed_{false};   // set with every Level::mu held: submissions see it in order
  std::atomic<int> phase_{kOpen};
  std::atomic<bool> stopping_{false};  // workers exit when idle
  std::stop_source stop_source_;       // requested by terminate()
  Mutex shutdown_mu_;  // serializes shutdown()
  bool shut_down_ TP_GUARDED_BY(shutdown_mu_) = false;
  Mutex hooks_mu_;
  std::vector<std::pair<std::size_t, std::function<void()>>> close_hooks_ TP_GUARDED_BY(hooks_mu_);
  std::size_t next_hook_id_ TP_GUARDED_BY(hooks_mu_) = 1;
  bool hooks_fired_ TP_GUARDED_BY(hooks_mu_) = false;
  // broken_mu_ serializes mark_broken. The two fields below are written once, under it, before
  // the release store of broken_, and read without it after an acquire load of broken_ that saw
  // true (publication, not mutual exclusion: not expressible as TP_GUARDED_BY).
  Mutex broken_mu_;
  std::exception_ptr broken_cause_;
  std::exception_ptr broken_reason_;   // BrokenPool(broken_cause_), made once (discarding allocates nothing)
  std::atomic<bool> broken_{false};

  // Timers fired by workers (DueSource). timer_hint_ is a lower bound on the earliest due time
  // (steady_clock ticks) of every registered source, kNoTimer when there is none; a source lowers
  // it (note_due) whenever its earliest timer moves. A worker that finds it passed takes
  // due_mu_ (try_lock: one firer at a time), resets the hint to kNoTimer and then asks every
  // source, lowering the hint to each one's answer: a timer added meanwhile is either seen by
  // fire_due (it was in the source when asked) or lowers the hint after the reset.
  static constexpr std::int64_t kNoTimer = INT64_MAX;
  alignas(64) std::atomic<std::int64_t> timer_hint_{kNoTimer};
  Mutex due_mu_;  // held while a worker fires timers
  std::vector<DueSource*> due_sources_ TP_GUARDED_BY(due_mu_);

  // Bounded queue (only when bounded_).
  alignas(64) std::atomic<std::size_t> queued_{0};  // accepted and not yet popped
  std::atomic<std::size_t> space_waiters_{0};
  Mutex space_mu_;  // pairs with space_cv_ (guards no field: space_waiters_ is atomic)
  std::condition_variable space_cv_;

  // Idle waiters (wait_idle, shutdown).
  alignas(64) std::atomic<std::uint32_t> idle_epoch_{0};  // futex word
  std::atomic<std::uint32_t> idle_waiters_{0};

  // Counters of work finished off the workers (sweeps, caller_runs, run_stranded), RMW-updated
  // (rare paths). ext_inline_* count tasks run inline and never queued; ext_ran_* queued tasks
  // that a submitter ran because no worker could start.
  std::atomic<std::uint64_t> ext_finished_{0}, ext_cancelled_{0}, ext_inline_{0}, ext_inline_failed_{0}, rejected_{0};
  std::atomic<std::uint64_t> ext_ran_{0}, ext_ran_failed_{0};
};

}  // namespace taskpool::detail
