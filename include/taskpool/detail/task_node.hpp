// taskpool/detail/task_node.hpp — a queued task: the node the pool's queues link, with the
// callable (and, for submit(), the future's shared state) in the same allocation. Not part of the
// API; the engine that queues nodes is src/pool/.
//
// Design note.
//  One allocation per task: FutureTask is at once the queue node, the Future's shared state and
//  the callable with its bound arguments; PostTask (post(), no future) is the node and the
//  callable only. Nodes come from the per-thread node cache (node_alloc.hpp): the class-scope
//  operator new/delete pass the size, so a free finds its size class without a header.
//  The node header is 16 bytes: the vtable pointer and one word holding the injection-list link,
//  the priority level and the "moved from a shared list" mark. A user-space address fits in the
//  low 56 bits on the 64-bit targets we build for (x86-64 with 4- or 5-level paging, AArch64),
//  which leaves the top byte for [from_list:1 | level:7]. So an empty posted lambda is a 16-byte
//  node and one capturing two pointers a 32-byte node.
//  Ownership: a node belongs to exactly one party at a time - the submitter until the engine
//  accepts it, then a queue, then the thread that popped it. run() and discard() each consume the
//  node (release its storage, or its reference to the shared state). The link word is written
//  only by the party that owns the node; queues publish nodes with their own release operations.
//  Cancellation: FutureTask::run claims the state (try_start, a CAS pending -> running) before
//  calling the callable, so a cancel() that won (pending -> cancelled) means it never runs. The
//  callable is destroyed as soon as it has run, so captured resources go before the last Future.
//
// Thread-safety: a node is touched by one thread at a time (its owner); the shared state part
// follows shared_state.hpp's rules. Blocking: run() blocks only as the task does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <new>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "taskpool/detail/callable.hpp"
#include "taskpool/detail/node_alloc.hpp"
#include "taskpool/detail/shared_state.hpp"
#include "taskpool/future.hpp"
#include "taskpool/options.hpp"

namespace taskpool::detail {

// Passed to TaskNode::run by the worker.
struct RunContext {
  std::stop_token pool_stop;        // requested by terminate()
  std::exception_ptr posted_error;  // set by a post()ed task that threw
};
enum class RunOutcome : unsigned char { ok, failed, skipped };

class TaskNode {
 public:
  // Sized delete (the deleting destructor passes the dynamic type's size) names the cache to
  // return to; over-aligned node types use the aligned global forms.
  static void* operator new(std::size_t n) { return node_alloc(n); }
  static void operator delete(void* p, std::size_t n) noexcept { node_free(p, n); }
  static void* operator new(std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
  // The unsized global form: Clang declares the sized aligned one only with -fsized-deallocation.
  static void operator delete(void* p, std::size_t, std::align_val_t a) noexcept { ::operator delete(p, a); }

  virtual RunOutcome run(RunContext& ctx) noexcept = 0;
  // Drops the task without running it: its future becomes cancelled (why == nullptr) or fails
  // with `why` (a broken pool).
  virtual void discard(std::exception_ptr why) noexcept = 0;

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

// Makes the node of submit(f, args...) and its Future.
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

// How the engine treats a submission that meets a full bounded queue: the pool's policy
// (Options::when_full), never wait (try_submit), wait until a deadline (submit_for), or admit past
// the capacity (`overflow`: timed tasks, accepted when they were scheduled).
enum class Admission { policy, no_wait, until_deadline, overflow };
enum class EnqueueStatus { queued, full, ran_inline };

}  // namespace taskpool::detail
