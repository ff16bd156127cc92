// taskpool/thread_pool.hpp — ThreadPool: a work-stealing pool of worker threads that runs
// submitted callables, with futures, priorities, an optional bounded queue and elastic threads.
//
// Threads start lazily (when a task arrives, no worker is idle and fewer than max_threads exist)
// and threads above min_threads exit after idle_timeout; an idle pool uses no CPU. Tasks from
// outside the pool enter shared FIFO queues (one per priority level); tasks submitted by a running
// task go to its worker's own deque; idle workers steal. docs/design.md explains the engine,
// docs/performance.md how fast it is; the engine's templates live in taskpool/detail/.
//
// Calling convention - one rule for every submission:
//   name([Priority,] what the call needs, f, args...)
// The Priority is optional and always first (default kDefaultPriority; higher starts first among
// queued tasks, strictly). A single task is `f, args...`: f(args...) - or f(stop_token, args...)
// when f takes a std::stop_token first - with decay-copies of f and args stored in the task.
//   submit([p,] f, args...)              -> Future<R>
//   post([p,] f, args...)                   fire and forget
//   try_submit([p,] f, args...)          -> std::optional<Future<R>>
//   submit_for([p,] duration, f, args...) -> std::optional<Future<R>>
//   submit_batch([p,] range)             -> std::vector<Future<R>>   (range of callables)
//   post_batch([p,] range)
//   parallel_for([p,] first, last, grain, body)
//
// Thread-safety: every member function may be called concurrently from any thread, including
// from tasks running on the pool itself, except the destructor and shutdown()/close()/terminate()
// from a worker of the same pool (they would have to join the calling thread: std::logic_error).
//
// Blocking behaviour of each call:
//   submit/post, submit_batch/post_batch  may block only under a full bounded queue with
//                     WhenFull::block, and only outside the pool (see "Full queue").
//   try_submit        never blocks. submit_for: blocks at most its duration.
//   parallel_for      until every chunk has run; the caller runs chunks itself meanwhile.
//   wait_idle         until no task is queued or running; wait_idle_for/until at most their
//                     duration. On a worker of the same pool they would wait on their own task,
//                     so they throw std::logic_error instead.
//   close/terminate/shutdown  until every worker thread has exited.
//   resize, stats, closed, broken, current  never block on tasks.
//   ~ThreadPool       = close(): runs what is queued, then joins.
//
// Full queue (bounded pools, Options::queue_capacity > 0): a submission from outside the pool
// applies when_full (block, reject: QueueFull, caller_runs: runs it on the caller). A submission
// from a task running on this pool never blocks - a pool whose workers all wait for room would
// deadlock - so under block or caller_runs it runs the new task inline at once, and under reject
// it throws QueueFull. try_submit ignores when_full and returns empty instead; submit_for waits
// up to its duration, then returns empty (on a worker of this pool it runs the task inline).
//
// Waiting inside a task: Future::get()/wait() on a worker help (run queued tasks while waiting),
// so a task may wait for tasks it submitted to its own pool, even in a one-thread pool.
//
// Errors: a task's exception reaches its Future; a post()ed task's exception goes to
// Options::on_error (default: one line on stderr). A priority outside [0, kPriorityLevels) throws
// std::invalid_argument. Submitting after shutdown began throws PoolClosed; to a broken pool,
// BrokenPool. A submission that throws queued nothing; one that returns was accepted, and close()
// runs it (docs/design.md, "Lifecycle contract"). When no worker thread can be created
// (pthread_create failing, e.g. under a process limit) the constructor throws ThreadStartFailed;
// so does a submission to a pool with no live worker (its task is not queued); a pool with live
// workers keeps running on them.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <optional>
#include <ranges>
#include <vector>

#include "taskpool/errors.hpp"
#include "taskpool/future.hpp"
#include "taskpool/options.hpp"
#include "taskpool/detail/callable.hpp"
#include "taskpool/detail/task_node.hpp"

namespace taskpool {

namespace detail {
class PoolCore;     // src/pool/pool_core.hpp
struct PoolAccess;  // taskpool/detail/pool_access.hpp
}  // namespace detail

class ThreadPool {
  template <class F, class... Args>
  using result_t = Future<detail::task_result_t<F, Args...>>;
  template <class Range>
  using element_t = std::ranges::range_reference_t<Range>;

 public:
  using clock = std::chrono::steady_clock;

  // A lazily grown pool: up to hardware_concurrency() threads, none kept when idle.
  ThreadPool();
  explicit ThreadPool(Options options);
  // A fixed pool of `threads` threads, all started now (min = max = threads).
  // The constructors throw ThreadStartFailed when min_threads threads cannot be started.
  explicit ThreadPool(std::size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Runs f(args...) on the pool; the Future carries its result or exception.
  template <class F, class... Args> requires detail::Task<F, Args...>
  auto submit(F&& f, Args&&... args) -> result_t<F, Args...>;
  template <class F, class... Args> requires detail::Task<F, Args...>
  auto submit(Priority p, F&& f, Args&&... args) -> result_t<F, Args...>;

  // Fire and forget. An exception escaping the task goes to Options::on_error.
  template <class F, class... Args> requires detail::Task<F, Args...>
  void post(F&& f, Args&&... args);
  template <class F, class... Args> requires detail::Task<F, Args...>
  void post(Priority p, F&& f, Args&&... args);

  // Empty when a bounded queue is full (never waits; when_full does not apply).
  template <class F, class... Args> requires detail::Task<F, Args...>
  auto try_submit(F&& f, Args&&... args) -> std::optional<result_t<F, Args...>>;
  template <class F, class... Args> requires detail::Task<F, Args...>
  auto try_submit(Priority p, F&& f, Args&&... args) -> std::optional<result_t<F, Args...>>;

  // Waits up to `d` for room in a bounded queue; empty if none came.
  template <class Rep, class Period, class F, class... Args> requires detail::Task<F, Args...>
  auto submit_for(std::chrono::duration<Rep, Period> d, F&& f, Args&&... args) -> std::optional<result_t<F, Args...>>;
  template <class Rep, class Period, class F, class... Args> requires detail::Task<F, Args...>
  auto submit_for(Priority p, std::chrono::duration<Rep, Period> d, F&& f, Args&&... args)
      -> std::optional<result_t<F, Args...>>;

  // Submits every callable of `range` in one queue operation (one lock for the whole batch). In a
  // bounded queue the batch enters whole or not at all (a batch larger than the capacity waits
  // for an empty queue).
  template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
  auto submit_batch(Range&& callables) -> std::vector<result_t<element_t<Range>>>;
  template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
  auto submit_batch(Priority p, Range&& callables) -> std::vector<result_t<element_t<Range>>>;
  template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
  void post_batch(Range&& callables);
  template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
  void post_batch(Priority p, Range&& callables);

  // Runs body(b, e) for every chunk [b, e) of [first, last) cut every `grain` indices (the last
  // chunk may be shorter), on up to max_threads threads at once: the calling thread and helper
  // tasks (at priority p) claim chunks until none is left, so uneven chunks balance. The first
  // exception a chunk throws is rethrown once the chunks already running have ended; unclaimed
  // chunks are then skipped. A full bounded queue or a racing shutdown leaves fewer helpers, never
  // fewer chunks. Throws std::invalid_argument when grain <= 0; PoolClosed/BrokenPool as submit.
  // On a worker of this pool it waits for started helpers as Future::get() does (helping).
  template <std::integral Index, class F> requires std::invocable<F&, Index, Index>
  void parallel_for(Index first, Index last, Index grain, F&& body);
  template <std::integral Index, class F> requires std::invocable<F&, Index, Index>
  void parallel_for(Priority p, Index first, Index last, Index grain, F&& body);

  // Blocks until no task is queued or running (tasks submitted meanwhile are waited for too).
  void wait_idle();
  template <class Rep, class Period>
  bool wait_idle_for(std::chrono::duration<Rep, Period> d) {
    return wait_idle_until(clock::now() + std::chrono::ceil<clock::duration>(d));
  }
  bool wait_idle_until(clock::time_point deadline);  // true when idle, false at the deadline

  void close() { shutdown(Shutdown::drain); }
  void terminate() { shutdown(Shutdown::terminate); }
  // Stops accepting work (submissions throw PoolClosed), treats unfinished work as `how` says,
  // and joins every worker. Safe to call again or concurrently: later calls wait for the first.
  void shutdown(Shutdown how);

  // Changes the thread bounds at run time. Extra threads exit after finishing their current
  // task; idle threads above a lowered minimum exit after idle_timeout; queued work is never
  // lost or run twice. Throws std::invalid_argument when max_threads == 0,
  // min_threads > max_threads or max_threads > max_supported_threads(); PoolClosed once shutdown
  // has begun; ThreadStartFailed when it cannot start min_threads threads (the bounds stay set).
  void resize(std::size_t min_threads, std::size_t max_threads);
  static constexpr std::size_t max_supported_threads() { return 512; }

  Stats stats() const;
  bool closed() const noexcept;
  bool broken() const noexcept;
  // The pool whose worker is calling, or nullptr on any other thread.
  static ThreadPool* current() noexcept;
  // The calling worker's index in its pool, or -1 on any other thread.
  static int current_worker_index() noexcept;

 private:
  friend struct detail::PoolAccess;  // timers and tests reach the engine only through it

  static int check_priority(Priority p);  // the level, or std::invalid_argument
  template <class F, class... Args>
  auto submit_with(detail::Admission a, clock::time_point deadline, Priority p, F&& f, Args&&... args)
      -> std::optional<result_t<F, Args...>>;
  // Take ownership of the node(s) in every case: queued, run inline (caller_runs), or discarded
  // (full: the caller reports it; closed/broken: throws).
  detail::EnqueueStatus enqueue(detail::TaskNode* node, detail::Admission a, clock::time_point deadline);
  detail::EnqueueStatus enqueue_batch(detail::TaskNode** nodes, std::size_t n, detail::Admission a,
                                      clock::time_point deadline);
  std::size_t max_threads_now() const noexcept;  // the current upper bound on worker threads
  [[noreturn]] void throw_closed() const;        // PoolClosed, or BrokenPool for a broken pool

  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace taskpool

#include "taskpool/detail/thread_pool_impl.hpp"
