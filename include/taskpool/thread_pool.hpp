// taskpool/thread_pool.hpp — ThreadPool: a work-stealing pool of worker threads.
//
// Overview. Tasks submitted from outside the pool enter a shared injection queue (one list per
// priority level); tasks submitted by a task running on a worker go to that worker's own
// work-stealing deque. Idle workers steal from each other, then sleep on an event count; an idle
// pool uses no CPU. Threads start lazily (one when a task arrives, no worker is idle and fewer than
// max_threads exist) and threads above min_threads exit after idle_timeout. docs/design.md
// explains the engine; docs/performance.md how fast it is.
//
// Thread-safety: every member function may be called concurrently from any thread, including
// from tasks running on the pool itself, except the destructor and shutdown()/close()/terminate()
// from a worker of the same pool (they would have to join the calling thread: std::logic_error).
//
// Blocking behaviour of each call:
//   submit/post       may block only under a full bounded queue with WhenFull::block (outside
//                     workers only: a worker never blocks on a full queue, see "Full queue").
//   try_submit        never blocks. submit_for: blocks at most its duration.
//   submit_batch/post_batch  as submit/post, for the whole batch at once.
//   wait_idle         blocks until no task is queued or running; wait_idle_for at most its
//                     duration. Called from a worker of the same pool they would wait on their own
//                     task, so they throw std::logic_error instead.
//   close/terminate/shutdown  block until every worker thread has exited.
//   resize, stats     never block on tasks (stats takes no lock on the task path).
//   ~ThreadPool       = close(): runs what is queued, then joins.
//
// Full queue (bounded pools): a submission from outside the pool applies when_full. A submission
// from a task running on this pool never blocks — a pool whose workers all wait for room would
// deadlock — so under WhenFull::block or caller_runs it runs the new task inline at once, and
// under WhenFull::reject it throws QueueFull.
//
// Waiting inside a task: Future::get()/wait() on a worker help (run queued tasks while waiting),
// so a task may wait for tasks it submitted to its own pool, even in a one-thread pool.
//
// Errors: a task's exception reaches its Future; a post()ed task's exception goes to
// Options::on_error (default: one line on stderr). Submitting after shutdown began throws
// PoolClosed; to a broken pool, BrokenPool. A submission that throws queued nothing; one that
// returns was accepted, and close() runs it (docs/design.md, "Lifecycle contract").
// When worker threads cannot be created (pthread_create failing, e.g. under a process limit): the
// constructor throws ThreadStartFailed; so does a submission to a pool with no live worker (its
// task is not queued); a pool with live workers keeps running on them.
#pragma once

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskpool/errors.hpp"
#include "taskpool/future.hpp"
#include "taskpool/options.hpp"

namespace taskpool {

class ThreadPool;

namespace detail {

// Passed to TaskNode::run by the worker.
struct RunContext {
  std::stop_token pool_stop;          // requested by terminate()
  std::exception_ptr posted_error;    // set by a post()ed task that threw
};
enum class RunOutcome : unsigned char { ok, failed, skipped };

// Task-node memory: per-thread caches by size class (src/pool/node_alloc.cpp has the design
// note). The common cases - pop this thread's alloc list, push its free list - are inline here,
// the rest is out of line. Sizes are compile-time constants at every call, so the class is too.
struct NodeCache {
  static constexpr std::size_t kGranule = 16, kClasses = 16, kMaxSize = kGranule * kClasses, kBatch = 64;
  static constexpr std::size_t class_of(std::size_t n) noexcept { return n == 0 ? 0 : (n - 1) / kGranule; }
  struct Block {
    Block* next;
  };
  Block* alloc[kClasses];  // allocations pop
  Block* freed[kClasses];  // frees push; at kBatch blocks the list moves on (out of line)
  std::uint32_t freed_count[kClasses];
  char* slab_cur[kClasses];  // the uncarved rest of this thread's slab of each class
  char* slab_end[kClasses];
  bool active;  // caching is on for this thread (set out of line; never under AddressSanitizer)
  bool closed;  // the thread is exiting: no more caching
};
// Trivially constructible and destructible (__thread), so usable for the whole life of the thread.
extern __thread NodeCache tl_node_cache;
void* node_alloc_slow(std::size_t n);
void node_free_slow(void* p, std::size_t n) noexcept;

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer builds allocate every node from malloc, so use-after-free of a node is caught.
inline constexpr bool kNodeCacheInline = false;
#else
inline constexpr bool kNodeCacheInline = true;
#endif

inline void* node_alloc(std::size_t n) {
  if (kNodeCacheInline && n <= NodeCache::kMaxSize) {
    NodeCache& k = tl_node_cache;
    const std::size_t c = NodeCache::class_of(n);
    if (NodeCache::Block* b = k.alloc[c]) {
      k.alloc[c] = b->next;
      return b;
    }
  }
  return node_alloc_slow(n);
}
inline void node_free(void* p, std::size_t n) noexcept {
  if (kNodeCacheInline && n <= NodeCache::kMaxSize) {
    NodeCache& k = tl_node_cache;
    const std::size_t c = NodeCache::class_of(n);
    if (k.active && k.freed_count[c] + 1 < NodeCache::kBatch) {
      auto* b = static_cast<NodeCache::Block*>(p);
      b->next = k.freed[c];
      k.freed[c] = b;
      ++k.freed_count[c];
      return;
    }
  }
  node_free_slow(p, n);
}

// A queued unit of work: an intrusive node of the injection lists and the element type of the
// work-stealing deques. run() and discard() each consume the node (release its storage).
class TaskNode {
 public:
  // Nodes come from per-thread caches: fork/join allocates and frees one per task, mostly on
  // the same thread. Sized delete (the deleting destructor passes the dynamic type's size)
  // names the cache to return to; over-aligned node types use the aligned global forms.
  static void* operator new(std::size_t n) { return node_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { node_free(p, n); }
  static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
  // The unsized global form: Clang declares the sized aligned one only with -fsized-deallocation.
  static void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { ::operator delete(p, a); }

  virtual RunOutcome run(RunContext& ctx) noexcept = 0;
  // Drops the task without running it: its future becomes cancelled (why == nullptr) or fails
  // with `why` (a broken pool).
  virtual void discard(std::exception_ptr why) noexcept = 0;

  // The injection-list link, the priority level and the from-list mark share one word, so a node
  // is 16 bytes plus its callable (a posted lambda capturing two pointers is a 32-byte node). A
  // user-space address fits in the low 56 bits on the 64-bit targets we build for (x86-64 with 4-
  // or 5-level paging, AArch64), which leaves the top byte for [from_list:1 | level:7].
  TaskNode* next() const noexcept { return reinterpret_cast<TaskNode*>(link_ & kAddrMask); }
  void set_next(TaskNode* n) noexcept { link_ = (link_ & ~kAddrMask) | reinterpret_cast<std::uintptr_t>(n); }
  int level() const noexcept { return static_cast<int>((link_ >> kLevelShift) & kLevelMask); }  // 0..kPriorityLevels-1
  void set_level(int l) noexcept {
    link_ = (link_ & ~(kLevelMask << kLevelShift)) | (static_cast<std::uintptr_t>(l) << kLevelShift);
  }
  // Moved from a shared list into a worker's deque (older than the tasks its children push).
  bool from_list() const noexcept { return (link_ & kFromList) != 0; }
  void set_from_list() noexcept { link_ |= kFromList; }

 protected:
  ~TaskNode() = default;

 private:
  static_assert(sizeof(std::uintptr_t) == 8, "taskpool needs a 64-bit target (tagged task links)");
  static constexpr int kLevelShift = 56;
  static constexpr std::uintptr_t kAddrMask = (std::uintptr_t{1} << kLevelShift) - 1;
  static constexpr std::uintptr_t kLevelMask = 0x7f, kFromList = std::uintptr_t{1} << 63;
  static_assert(kPriorityLevels <= static_cast<int>(kLevelMask) + 1);
  std::uintptr_t link_ = static_cast<std::uintptr_t>(kDefaultPriority.value) << kLevelShift;
};

template <class F, class... Args>
constexpr bool takes_stop_token_v = std::is_invocable_v<F&, std::stop_token, Args&...>;

template <class F, class... Args>
struct task_result {
  using type = std::invoke_result_t<F&, Args&...>;
};
template <class F, class... Args>
  requires takes_stop_token_v<F, Args...>
struct task_result<F, Args...> {
  using type = std::invoke_result_t<F&, std::stop_token, Args&...>;
};
template <class F, class... Args>
using task_result_t = typename task_result<std::decay_t<F>, std::decay_t<Args>...>::type;

// "put with a type check": submit/post accept only what can be called with the given arguments
// (optionally preceded by a std::stop_token); anything else fails to compile here.
template <class F, class... Args>
concept Task = std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...> ||
               std::is_invocable_v<std::decay_t<F>&, std::stop_token, std::decay_t<Args>&...>;

// The callable and its bound arguments, stored inline in the node (no extra allocation).
template <class F, class... Args>
class Callable {
 public:
  template <class G, class... A>
  explicit Callable(G&& g, A&&... a) : f_(std::forward<G>(g)), args_(std::forward<A>(a)...) {}
  decltype(auto) operator()(std::stop_token token) {
    if constexpr (takes_stop_token_v<F, Args...>) {
      return std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(f_, std::move(token), a...); }, args_);
    } else {
      (void)token;
      return std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(f_, a...); }, args_);
    }
  }

 private:
  [[no_unique_address]] F f_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

// A task with a future: one allocation holds the node, the shared state and the callable.
template <class R, class F, class... Args>
class FutureTask final : public TaskNode, public SharedState<R> {
 public:
  static constexpr bool kTakesToken = takes_stop_token_v<F, Args...>;
  template <class G, class... A>
  explicit FutureTask(G&& g, A&&... a) {
    ::new (static_cast<void*>(&fn_)) Callable<F, Args...>(std::forward<G>(g), std::forward<A>(a)...);
  }
  RunOutcome run(RunContext& ctx) noexcept override {
    if (!this->try_start()) {  // cancelled while queued
      destroy_fn();
      this->release();
      return RunOutcome::skipped;
    }
    RunOutcome outcome = RunOutcome::ok;
    try {
      if constexpr (kTakesToken) {
        // The task stops when its future is cancelled (own source) or the pool terminates.
        std::stop_callback link(ctx.pool_stop, [this]() noexcept { stop_.request_stop(); });
        store(stop_.get_token());
      } else {
        store(std::stop_token{});
      }
    } catch (...) {
      this->error = std::current_exception();
      outcome = RunOutcome::failed;
    }
    destroy_fn();  // captured resources go now, not when the last Future does
    this->finish_and_release();
    return outcome;
  }
  void discard(std::exception_ptr why) noexcept override {
    if (why == nullptr) {
      this->try_cancel();
    } else if (this->try_start()) {
      this->error = std::move(why);
      this->finish();
    }
    destroy_fn();
    this->release();
  }
  void request_stop() noexcept override {
    if constexpr (kTakesToken) stop_.request_stop();
  }

 private:
  void store(std::stop_token token) {
    if constexpr (std::is_void_v<R>) {
      fn()(std::move(token));
      this->value.emplace();
    } else {
      this->value.emplace(fn()(std::move(token)));
    }
  }
  Callable<F, Args...>& fn() noexcept { return *std::launder(reinterpret_cast<Callable<F, Args...>*>(&fn_)); }
  void destroy_fn() noexcept {
    if (alive_) {
      fn().~Callable();
      alive_ = false;
    }
  }
  struct NoSource {
    void request_stop() noexcept {}
  };
  alignas(Callable<F, Args...>) unsigned char fn_[sizeof(Callable<F, Args...>)];
  bool alive_ = true;  // touched only by the single thread that runs or discards the node
  [[no_unique_address]] std::conditional_t<kTakesToken, std::stop_source, NoSource> stop_;
};

// A fire-and-forget task: the node and the callable, nothing else.
template <class F, class... Args>
class PostTask final : public TaskNode {
 public:
  template <class G, class... A>
  explicit PostTask(G&& g, A&&... a) : fn_(std::forward<G>(g), std::forward<A>(a)...) {}
  RunOutcome run(RunContext& ctx) noexcept override {
    RunOutcome outcome = RunOutcome::ok;
    try {
      fn_(ctx.pool_stop);
    } catch (...) {
      ctx.posted_error = std::current_exception();
      outcome = RunOutcome::failed;
    }
    delete this;
    return outcome;
  }
  void discard(std::exception_ptr) noexcept override { delete this; }

 private:
  [[no_unique_address]] Callable<F, Args...> fn_;
};

template <class F, class... Args>
auto make_future_task(F&& f, Args&&... args) {
  using R = task_result_t<F, Args...>;
  using Node = FutureTask<R, std::decay_t<F>, std::decay_t<Args>...>;
  auto* node = new Node(std::forward<F>(f), std::forward<Args>(args)...);
  node->set_initial_refs(2);  // the queue's and the Future's, without an atomic increment
  return std::pair<TaskNode*, Future<R>>(node, Future<R>::adopt(node));
}
template <class F, class... Args>
TaskNode* make_post_task(F&& f, Args&&... args) {
  return new PostTask<std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f), std::forward<Args>(args)...);
}

// How an enqueue treats a full bounded queue.
// `overflow` admits past the capacity: used for timed tasks, accepted when they were scheduled.
enum class Admission { policy, no_wait, until_deadline, overflow };
enum class EnqueueStatus { queued, full, ran_inline };

class PoolCore;  // src/pool/pool_core.hpp
class SchedulerCore;  // src/timer/scheduler.cpp

// ---- test hooks --------------------------------------------------------------------------------
// Fault injection at the pool's failure points, and callbacks at lifecycle points that tests
// interleave with (tests/common/fault_injection.hpp wraps them). Always compiled in: a disarmed
// site costs one relaxed load, and no site is on a per-task path. Process-wide state: arm only
// while no other code of the process uses a pool.
enum class FaultPoint : unsigned char {
  thread_start,  // starting a worker thread fails with std::system_error(EAGAIN), as pthread_create
  worker_alloc,  // allocating a new worker slot throws std::bad_alloc
  deque_grow,    // growing a worker's deque fails as if its allocation threw std::bad_alloc
  membarrier,    // the sleepers' heavy barrier fails, as membarrier(2) returning -1
};
inline constexpr std::size_t kFaultPoints = 4;
// From now on the next `skip` passes through `p` succeed, then `count` fail (count < 0: all).
void arm_fault(FaultPoint p, int skip, int count) noexcept;
void disarm_faults() noexcept;
std::uint64_t fault_hits(FaultPoint p) noexcept;  // failures injected at `p` so far

enum class HookPoint : unsigned char {
  resize_unlocked,  // in resize(), after its closed() check, before it takes the threads lock
  spawn_unlocked,   // starting a worker for queued work (a submission's or go_busy's), before the lock
};
inline constexpr std::size_t kHookPoints = 2;
using HookFn = void (*)(void* arg);
void set_test_hook(HookPoint p, HookFn fn, void* arg) noexcept;  // fn == nullptr removes it

// Read-only views of a pool's engine, for the tests.
struct PoolTestAccess {
  // The event count's wake-up protocol: 0 asymmetric (membarrier), 1 switching to RMWs after a
  // failed barrier, 2 symmetric (RMW notifications).
  static int wakeup_protocol(const ThreadPool& pool) noexcept;
  static std::size_t sleeping_workers(const ThreadPool& pool) noexcept;  // registered to sleep
  static std::size_t idle_waiters(const ThreadPool& pool) noexcept;  // in wait_idle or close
};

// A set of timers whose due ones the pool's workers fire between tasks, so a timer comes due
// on time even when the timer thread waits for a CPU behind busy workers (see
// PoolCore::fire_timers). fire_due() runs on a worker: it launches every timer due at `now`
// without blocking on the pool and returns the earliest remaining due time (max() if none).
class DueSource {
 public:
  virtual std::chrono::steady_clock::time_point fire_due(std::chrono::steady_clock::time_point now) noexcept = 0;

 protected:
  ~DueSource() = default;
};

}  // namespace detail

class ThreadPool {
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

  // Runs f(args...) — or f(stop_token, args...) — on the pool; the Future carries its result.
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  auto submit(F&& f, Args&&... args) -> Future<detail::task_result_t<F, Args...>> {
    return submit(kDefaultPriority, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  auto submit(Priority p, F&& f, Args&&... args) -> Future<detail::task_result_t<F, Args...>> {
    int level = check_priority(p);
    auto [node, fut] = detail::make_future_task(std::forward<F>(f), std::forward<Args>(args)...);
    node->set_level(level);
    if (enqueue(node, detail::Admission::policy, {}) == detail::EnqueueStatus::full) throw QueueFull();
    return std::move(fut);
  }

  // Fire and forget. An exception escaping the task goes to Options::on_error.
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  void post(F&& f, Args&&... args) {
    post(kDefaultPriority, std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  void post(Priority p, F&& f, Args&&... args) {
    int level = check_priority(p);
    detail::TaskNode* node = detail::make_post_task(std::forward<F>(f), std::forward<Args>(args)...);
    node->set_level(level);
    if (enqueue(node, detail::Admission::policy, {}) == detail::EnqueueStatus::full) throw QueueFull();
  }

  // Empty when a bounded queue is full (never waits; caller_runs does not apply).
  template <class F>
    requires detail::Task<F>
  auto try_submit(F&& f, Priority p = kDefaultPriority) -> std::optional<Future<detail::task_result_t<F>>> {
    return submit_with(detail::Admission::no_wait, {}, p, std::forward<F>(f));
  }
  // Waits up to `d` for room in a bounded queue; empty if none came.
  template <class Rep, class Period, class F>
    requires detail::Task<F>
  auto submit_for(std::chrono::duration<Rep, Period> d, F&& f, Priority p = kDefaultPriority)
      -> std::optional<Future<detail::task_result_t<F>>> {
    return submit_with(detail::Admission::until_deadline, clock::now() + std::chrono::ceil<clock::duration>(d), p,
                       std::forward<F>(f));
  }

  // Submits every callable of `range` in one queue operation (one lock for the whole batch).
  // In a bounded queue the batch enters whole or not at all (a batch larger than the capacity
  // waits for an empty queue).
  template <std::ranges::input_range Range>
    requires detail::Task<std::ranges::range_reference_t<Range>>
  auto submit_batch(Range&& callables, Priority p = kDefaultPriority)
      -> std::vector<Future<detail::task_result_t<std::ranges::range_reference_t<Range>>>> {
    int level = check_priority(p);
    using R = detail::task_result_t<std::ranges::range_reference_t<Range>>;
    std::vector<detail::TaskNode*> nodes;
    std::vector<Future<R>> futures;
    if constexpr (std::ranges::sized_range<Range>) {
      nodes.reserve(std::ranges::size(callables));
      futures.reserve(std::ranges::size(callables));
    }
    try {
      for (auto&& c : callables) {
        auto [node, fut] = detail::make_future_task(std::forward<decltype(c)>(c));
        node->set_level(level);
        nodes.push_back(node);
        futures.push_back(std::move(fut));
      }
    } catch (...) {
      for (auto* n : nodes) n->discard(nullptr);
      throw;
    }
    if (enqueue_batch(nodes.data(), nodes.size(), detail::Admission::policy, {}) == detail::EnqueueStatus::full)
      throw QueueFull();
    return futures;
  }
  template <std::ranges::input_range Range>
    requires detail::Task<std::ranges::range_reference_t<Range>>
  void post_batch(Range&& callables, Priority p = kDefaultPriority) {
    int level = check_priority(p);
    std::vector<detail::TaskNode*> nodes;
    if constexpr (std::ranges::sized_range<Range>) nodes.reserve(std::ranges::size(callables));
    try {
      for (auto&& c : callables) {
        nodes.push_back(detail::make_post_task(std::forward<decltype(c)>(c)));
        nodes.back()->set_level(level);
      }
    } catch (...) {
      for (auto* n : nodes) n->discard(nullptr);
      throw;
    }
    if (enqueue_batch(nodes.data(), nodes.size(), detail::Admission::policy, {}) == detail::EnqueueStatus::full)
      throw QueueFull();
  }

  // Runs body(b, e) for every chunk [b, e) of [first, last) cut every `grain` indices (the last
  // chunk may be shorter), on up to max_threads threads at once: the calling thread and helper
  // tasks on the pool claim chunks one at a time until none is left (dynamic scheduling, so
  // uneven chunks balance). Returns when every claimed chunk has run. The first exception a
  // chunk throws is rethrown here once the chunks already running have ended; chunks not yet
  // claimed are then skipped. Helpers are offered with try_submit at priority `p`: a full bounded
  // queue or a shutdown racing with the call leaves fewer helpers, never fewer chunks.
  // Throws std::invalid_argument when grain <= 0; PoolClosed / BrokenPool as submit() does.
  // Blocking: until every chunk has run; the caller runs chunks itself meanwhile. On a worker of
  // this pool it waits for started helpers as Future::get() does (helping).
  template <std::integral Index, class F>
    requires std::invocable<F&, Index, Index>
  void parallel_for(Index first, Index last, Index grain, F&& body, Priority p = kDefaultPriority) {
    if (grain <= 0) throw std::invalid_argument("taskpool: parallel_for needs a positive grain");
    check_priority(p);
    if (closed() || broken()) throw_closed();
    if (last <= first) return;
    using U = std::make_unsigned_t<Index>;
    const U span = static_cast<U>(last - first), step = static_cast<U>(grain);
    const std::size_t chunks = static_cast<std::size_t>(span / step + (span % step != 0 ? 1 : 0));
    std::atomic<std::size_t> next{0};  // the next unclaimed chunk; >= chunks once all are claimed
    std::atomic<bool> failed{false};
    std::exception_ptr error;  // written by the one thread that set `failed`
    auto work = [&]() noexcept {
      for (std::size_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
        const U off = static_cast<U>(c) * step;
        const Index b = static_cast<Index>(first + static_cast<Index>(off));
        const Index e = span - off > step ? static_cast<Index>(b + grain) : last;
        try {
          body(b, e);
        } catch (...) {
          if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
          next.store(chunks, std::memory_order_relaxed);  // skip what nobody has claimed yet
        }
      }
    };
    std::vector<Future<void>> helpers;
    const std::size_t n = std::min(chunks, max_threads_now()) - 1;  // the caller is one runner
    helpers.reserve(n);
    try {
      for (std::size_t i = 0; i < n; ++i) {
        auto f = try_submit(work, p);
        if (!f) break;
        helpers.push_back(std::move(*f));
      }
    } catch (...) {
      // A shutdown racing with us, or no memory for a node: the helpers already queued refer to
      // this frame, so we must not unwind past them - the caller runs what they do not.
    }
    work();
    // A helper still queued has nothing left to claim: cancel it instead of waiting for a worker.
    for (auto& h : helpers)
      if (!h.cancel()) h.wait();
    if (error) std::rethrow_exception(error);
  }

  // Blocks until no task is queued or running (tasks submitted meanwhile are waited for too).
  void wait_idle();
  template <class Rep, class Period>
  bool wait_idle_for(std::chrono::duration<Rep, Period> d) {
    return wait_idle_until(clock::now() + std::chrono::ceil<clock::duration>(d));
  }
  bool wait_idle_until(clock::time_point deadline);

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
  std::size_t max_threads_now() const noexcept;  // the current upper bound on worker threads
  [[noreturn]] void throw_closed() const;        // PoolClosed, or BrokenPool for a broken pool
  static int check_priority(Priority p) {
    if (p.value < 0 || p.value >= kPriorityLevels)
      throw std::invalid_argument("taskpool: priority " + std::to_string(p.value) + " is outside [0, " +
                                  std::to_string(kPriorityLevels - 1) + "]");
    return p.value;
  }
  template <class F>
  auto submit_with(detail::Admission a, clock::time_point deadline, Priority p, F&& f)
      -> std::optional<Future<detail::task_result_t<F>>> {
    int level = check_priority(p);
    auto [node, fut] = detail::make_future_task(std::forward<F>(f));
    node->set_level(level);
    if (enqueue(node, a, deadline) == detail::EnqueueStatus::full) return std::nullopt;
    return std::move(fut);
  }
  // Takes ownership of the node(s) in every case: queued, run inline (caller_runs), or discarded
  // (full: the caller reports it; closed/broken: throws).
  detail::EnqueueStatus enqueue(detail::TaskNode* node, detail::Admission a, clock::time_point deadline);
  detail::EnqueueStatus enqueue_batch(detail::TaskNode** nodes, std::size_t n, detail::Admission a,
                                      clock::time_point deadline);

  // Used by Scheduler: calls `hook` once when shutdown begins (at once if it already has).
  friend class detail::SchedulerCore;
  friend struct detail::PoolTestAccess;
  std::size_t add_close_hook(std::function<void()> hook);
  void remove_close_hook(std::size_t id);
  // Registers a timer set for firing by workers; remove_due_source() returns once no worker is
  // inside its fire_due(). note_due() tells the pool a timer of a source is due at `t`.
  void add_due_source(detail::DueSource* s);
  void remove_due_source(detail::DueSource* s);
  void note_due(clock::time_point t) noexcept;

  std::unique_ptr<detail::PoolCore> core_;
};

}  // namespace taskpool
