// taskpool/future.hpp — Future<T>: a shared handle to the outcome of one task.
//
// A Future refers to shared state owned jointly by every copy and by the task that will complete
// it; copies are cheap (one atomic increment) and all observe the same outcome. The outcome is a
// value, an exception (rethrown by get()), or "cancelled" (get() throws taskpool::Cancelled).
//
// Thread-safety: all const members and cancel(), then(), on_done() may be called concurrently
// from any threads on any copies. get() on a move-only T moves the value out, so for such T call
// it once; for copyable T every get() returns a copy.
//
// Blocking:
//   ready(), cancelled(), cancel(), then(), on_done()  never block.
//   wait(), get()  block until the outcome is known. Called on a worker thread of a ThreadPool,
//                  they *help*: the worker runs other queued tasks of its pool while it waits, so a
//                  task that waits on work queued behind it in the same pool cannot deadlock it.
//   wait_for(), wait_until()  block at most until the deadline and never run other tasks.
//
// Continuations: then(f) and on_done(f) run f on the thread that completes the task (or at once,
// on the calling thread, if it is already complete). Keep them short; use then(cq, f) to run the
// continuation on a CompletionQueue's draining thread instead. An exception escaping an on_done
// callback is written to stderr (it has no other owner); one escaping then(f) completes the
// returned future with it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <condition_variable>
#include <deque>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskpool/completion_queue.hpp"
#include "taskpool/errors.hpp"

namespace taskpool {

template <class T>
class Future;

namespace detail {

class SharedStateBase;

// One registered continuation. Intrusive node of SharedStateBase::callbacks_.
struct CallbackNode {
  virtual ~CallbackNode() = default;
  virtual void invoke(SharedStateBase& state) noexcept = 0;
  CallbackNode* next = nullptr;
};

// Design note — the state word and the callback stack (lock-free).
//  state_ is 64 bits: the low half holds the phase and two flags (it is also the futex word), the
//  high half the reference count, so completing a task and dropping its reference can be one RMW.
//  bits 0-1: phase, moving only forward: pending(0) -> running(1) -> done(2), or
//  pending -> cancelled(3), or pending -> done (a promise fulfilled without a "running" phase is
//  still claimed first through running, so exactly one party ever writes the outcome).
//  bit 2: "a thread sleeps on this word" — set by waiters before futex-waiting, so finish() makes a
//  wake-up system call only when someone sleeps.
//  bit 3: "callbacks may be registered" — set by add_callback() (while the phase is not final)
//  before it pushes its node, so completion touches the callback stack only when it has to.
//  The completing RMW returns the old word: with the bit clear no callback was ever pushed and
//  none can be (a later add_callback sees the final phase and runs its node itself).
//  Invariants: the outcome (value_/error) is written only by the thread that moved the phase to
//  running, before the release-CAS to done; readers load the phase with acquire, so a reader that
//  sees done sees the outcome. callbacks_ is a Treiber stack closed by the sentinel kClosed:
//  finish() exchanges it (acq_rel) for kClosed and runs what it took; add_callback() CASes a node
//  in unless it sees kClosed, in which case it runs the node itself. Every node therefore runs
//  exactly once, after the outcome is published.
//  References: every Future copy and the task (or timer, or promise) that will complete the state
//  hold one; the holder that takes the count to zero deletes the state. finish_and_release() folds
//  the task's release into its completing RMW only while neither flag is set: a waiter or a
//  callback still needs the state after completion, and with the task's reference gone the
//  Future's owner could delete it under them.
class SharedStateBase {
 public:
  static constexpr std::uint32_t kPending = 0, kRunning = 1, kDone = 2, kCancelled = 3;
  static constexpr std::uint32_t kPhaseMask = 3, kWaiters = 4, kCallbacks = 8;
  static constexpr int kRefShift = 32;
  static constexpr std::uint64_t kRefOne = std::uint64_t{1} << kRefShift;

  SharedStateBase() noexcept = default;
  SharedStateBase(const SharedStateBase&) = delete;
  SharedStateBase& operator=(const SharedStateBase&) = delete;
  virtual ~SharedStateBase();

  void add_ref() noexcept { state_.fetch_add(kRefOne, std::memory_order_relaxed); }
  void release() noexcept {
    // The last owner needs no RMW: while it holds the only reference nobody can take another.
    // (acquire pairs with the other owners' release-decrements, so their writes happen first.)
    if ((state_.load(std::memory_order_acquire) >> kRefShift) == 1 ||
        (state_.fetch_sub(kRefOne, std::memory_order_acq_rel) >> kRefShift) == 1)
      delete this;
  }
  // Before the state is shared: start with `n` references (a task node and its Future).
  void set_initial_refs(std::uint32_t n) noexcept {
    state_.store((std::uint64_t{n} << kRefShift) | (state_.load(std::memory_order_relaxed) & 0xffffffffu),
                 std::memory_order_relaxed);
  }

  std::uint32_t phase() const noexcept { return static_cast<std::uint32_t>(state_.load(std::memory_order_acquire)) & kPhaseMask; }
  bool is_ready() const noexcept { return phase() >= kDone; }

  // pending -> running. False if the task was cancelled (or already claimed).
  bool try_start() noexcept;
  // pending -> cancelled, then wakes waiters and runs callbacks. False if it had started.
  bool try_cancel() noexcept;
  // running -> done; wakes waiters and runs callbacks. Only the thread that won try_start().
  void finish() noexcept;
  // finish(), then release() the caller's reference: one RMW when nobody waits or registered a
  // callback. The caller must not touch the state afterwards.
  void finish_and_release() noexcept;

  void wait() const;                                                   // may help (see header)
  bool wait_until(std::chrono::steady_clock::time_point deadline) const;  // true when ready

  // Runs `node` after completion (at once, on this thread, if already complete). Takes ownership.
  void add_callback(CallbackNode* node) noexcept;

  // Asks a running task that takes a std::stop_token to stop; no-op for other states.
  virtual void request_stop() noexcept {}

  std::exception_ptr error;  // the task's exception, written before finish()

 private:
  void publish_final(std::uint32_t phase) noexcept;

  const void* futex_word() const noexcept { return &state_; }  // the low half (little-endian)

  mutable std::atomic<std::uint64_t> state_{kRefOne | kPending};  // [refs:32 | flags:2 | phase:2]
  std::atomic<CallbackNode*> callbacks_{nullptr};
};

struct Unit {};
template <class T>
using storage_t = std::conditional_t<std::is_void_v<T>, Unit, T>;

template <class T>
class SharedState : public SharedStateBase {
 public:
  std::optional<storage_t<T>> value;  // engaged by the claimer before finish()
};

template <class T>
SharedState<T>* state_of(const Future<T>& f) noexcept;

// Writes an outcome into a state that nobody else will run (results of then/when_all/...).
// Dropping a Promise that never completed its state cancels it, so no waiter hangs.
template <class T>
class Promise {
 public:
  Promise() : s_(new SharedState<T>()) {}
  Promise(Promise&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Promise& operator=(Promise&&) = delete;
  ~Promise() {
    if (s_ == nullptr) return;
    s_->try_cancel();
    s_->release();
  }
  Future<T> future() const;
  // Runs fn and stores its result or exception. No-op when the state was cancelled meanwhile.
  template <class Fn>
  void fulfil_with(Fn&& fn) noexcept {
    if (!s_->try_start()) return;
    try {
      if constexpr (std::is_void_v<T>) {
        std::forward<Fn>(fn)();
        s_->value.emplace();
      } else {
        s_->value.emplace(std::forward<Fn>(fn)());
      }
    } catch (...) {
      s_->error = std::current_exception();
    }
    s_->finish();
  }
  void fail(std::exception_ptr e) noexcept {
    if (!s_->try_start()) return;
    s_->error = std::move(e);
    s_->finish();
  }
  void cancel() noexcept { s_->try_cancel(); }

 private:
  SharedState<T>* s_;
};

template <class F>
struct CallbackImpl final : CallbackNode {
  explicit CallbackImpl(F&& fn) : f(std::move(fn)) {}
  void invoke(SharedStateBase& s) noexcept override { f(s); }
  F f;
};
template <class F>
CallbackNode* make_callback(F&& f) {
  return new CallbackImpl<std::decay_t<F>>(std::forward<F>(f));
}

// Reports an exception that has no other owner (an on_done callback threw).
void report_orphan_exception(const char* where, std::exception_ptr e) noexcept;

template <class T, class F>
constexpr bool takes_future_v = std::is_invocable_v<F&, Future<T>>;

template <class T, class F>
struct then_result {
  using type = std::invoke_result_t<F&, Future<T>>;
};
template <class T, class F>
  requires(!takes_future_v<T, F> && std::is_void_v<T>)
struct then_result<T, F> {
  using type = std::invoke_result_t<F&>;
};
template <class T, class F>
  requires(!takes_future_v<T, F> && !std::is_void_v<T>)
struct then_result<T, F> {
  using type = std::invoke_result_t<F&, T>;
};
template <class T, class F>
using then_result_t = typename then_result<T, F>::type;

// Applies continuation f to the completed future `src`, completing `out`.
template <class T, class U, class F>
void run_continuation(F& f, Future<T> src, Promise<U>& out) noexcept;

}  // namespace detail

template <class T>
class Future {
  static_assert(!std::is_reference_v<T>, "Future<T&> is not supported; use Future<T*> or std::reference_wrapper");

 public:
  using value_type = T;

  Future() noexcept = default;
  Future(const Future& o) noexcept : s_(o.s_) {
    if (s_) s_->add_ref();
  }
  Future(Future&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
  Future& operator=(Future o) noexcept {
    std::swap(s_, o.s_);
    return *this;
  }
  ~Future() {
    if (s_) s_->release();
  }

  // False for a default-constructed or moved-from Future; every other member requires true.
  bool valid() const noexcept { return s_ != nullptr; }

  // Waits for the outcome, then returns the value, rethrows the task's exception, or throws
  // Cancelled. Blocks (helping on pool workers, see the header comment).
  T get() {
    wait();
    if (s_->phase() == detail::SharedStateBase::kCancelled) throw Cancelled();
    if (s_->error) std::rethrow_exception(s_->error);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_copy_constructible_v<T>) {
      return *s_->value;
    } else {
      return std::move(*s_->value);
    }
  }
  void wait() const {
    check();
    if (!s_->is_ready()) s_->wait();
  }
  template <class Rep, class Period>
  std::future_status wait_for(std::chrono::duration<Rep, Period> d) const {
    return wait_until(std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(d));
  }
  template <class Clock, class Duration>
  std::future_status wait_until(std::chrono::time_point<Clock, Duration> t) const {
    check();
    for (;;) {
      if (s_->is_ready()) return std::future_status::ready;
      auto left = t - Clock::now();
      if (left <= decltype(left)::zero()) return std::future_status::timeout;
      // Other clocks are converted in slices so a clock that jumps is re-read at least every 100 ms.
      auto slice = std::min<std::chrono::steady_clock::duration>(
          std::chrono::ceil<std::chrono::steady_clock::duration>(left), std::chrono::milliseconds(100));
      if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) slice = std::chrono::ceil<std::chrono::steady_clock::duration>(left);
      if (s_->wait_until(std::chrono::steady_clock::now() + slice)) return std::future_status::ready;
    }
  }
  bool ready() const noexcept { return s_ && s_->is_ready(); }
  bool cancelled() const noexcept { return s_ && s_->phase() == detail::SharedStateBase::kCancelled; }
  // A task that has not started never runs and its future becomes cancelled: returns true. A
  // running task that takes a std::stop_token gets stop requested; returns false. A finished task:
  // returns false.
  bool cancel() noexcept {
    if (!s_) return false;
    if (s_->try_cancel()) return true;
    if (s_->phase() == detail::SharedStateBase::kRunning) s_->request_stop();
    return false;
  }

  // Continuation. f is called as f(Future<T>) if it accepts that (it sees every outcome), else as
  // f(T) / f() on success only — an exception or cancellation then passes to the result unchanged.
  template <class F>
  auto then(F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>> {
    using U = detail::then_result_t<T, std::decay_t<F>>;
    check();
    detail::Promise<U> out;
    Future<U> result = out.future();
    s_->add_callback(detail::make_callback(
        [fn = std::forward<F>(f), out = std::move(out)](detail::SharedStateBase& s) mutable noexcept {
          detail::run_continuation<T, U>(fn, Future<T>::from_state(static_cast<detail::SharedState<T>*>(&s)), out);
        }));
    return result;
  }
  // As then(f), but f runs on the thread that drains `cq` (poll/run_for/wait_all).
  template <class F>
  auto then(CompletionQueue& cq, F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>> {
    using U = detail::then_result_t<T, std::decay_t<F>>;
    check();
    detail::Promise<U> out;
    Future<U> result = out.future();
    auto core = cq.core();
    detail::cq_add_pending(*core);
    s_->add_callback(detail::make_callback(
        [fn = std::forward<F>(f), out = std::move(out), core](detail::SharedStateBase& s) mutable noexcept {
          auto src = Future<T>::from_state(static_cast<detail::SharedState<T>*>(&s));
          try {
            detail::cq_deliver(*core, detail::make_job([fn = std::move(fn), out = std::move(out), src]() mutable {
              detail::run_continuation<T, U>(fn, src, out);
            }));
          } catch (...) {
            detail::report_orphan_exception("CompletionQueue delivery", std::current_exception());
          }
        }));
    return result;
  }
  // Calls f(Future<T>) — or f() — once the outcome is known, on the completing thread.
  template <class F>
  void on_done(F&& f) {
    check();
    s_->add_callback(detail::make_callback([fn = std::forward<F>(f)](detail::SharedStateBase& s) mutable noexcept {
      try {
        if constexpr (std::is_invocable_v<decltype(fn)&, Future<T>>) {
          fn(Future<T>::from_state(static_cast<detail::SharedState<T>*>(&s)));
        } else {
          fn();
        }
      } catch (...) {
        detail::report_orphan_exception("Future::on_done callback", std::current_exception());
      }
    }));
  }

  // Adopts one reference to `s` (library use).
  static Future adopt(detail::SharedState<T>* s) noexcept {
    Future f;
    f.s_ = s;
    return f;
  }
  // Takes a new reference to `s` (library use).
  static Future from_state(detail::SharedState<T>* s) noexcept {
    s->add_ref();
    return adopt(s);
  }

 private:
  friend detail::SharedState<T>* detail::state_of<T>(const Future<T>&) noexcept;
  void check() const {
    if (!s_) throw std::logic_error("taskpool: use of an empty Future");
  }
  detail::SharedState<T>* s_ = nullptr;
};

namespace detail {
template <class T>
SharedState<T>* state_of(const Future<T>& f) noexcept {
  return f.s_;
}
template <class T>
Future<T> Promise<T>::future() const {
  return Future<T>::from_state(s_);
}
template <class T, class U, class F>
void run_continuation(F& f, Future<T> src, Promise<U>& out) noexcept {
  if constexpr (takes_future_v<T, F>) {
    out.fulfil_with([&]() -> U { return f(std::move(src)); });
  } else {
    auto* s = state_of(src);
    if (s->phase() == SharedStateBase::kCancelled) {
      out.cancel();
    } else if (s->error) {
      out.fail(s->error);
    } else if constexpr (std::is_void_v<T>) {
      out.fulfil_with([&]() -> U { return f(); });
    } else {
      out.fulfil_with([&]() -> U { return f(src.get()); });
    }
  }
}
}  // namespace detail

// ---- Combinators ---------------------------------------------------------------------------

// Completes when every input has completed: with all values in input order, or with the first
// failure (an exception, or Cancelled for a cancelled input) in completion order. Never blocks.
template <class T>
auto when_all(std::vector<Future<T>> futures) -> Future<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> {
  using R = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
  // Each input writes only its own slot, then decrements `remaining` (acq_rel); the input that
  // takes it to zero therefore sees every slot and every first_error write.
  struct Join {
    explicit Join(std::size_t n) : remaining(n), values(n) {}
    std::atomic<std::size_t> remaining;
    std::vector<std::optional<detail::storage_t<T>>> values;
    std::mutex mu;
    std::exception_ptr first_error;  // guarded by mu until remaining reaches zero
    detail::Promise<R> out;
    void finish() {
      if (first_error) {
        out.fail(first_error);
      } else if constexpr (std::is_void_v<T>) {
        out.fulfil_with([] {});
      } else {
        out.fulfil_with([&] {
          std::vector<T> v;
          v.reserve(values.size());
          for (auto& x : values) v.push_back(std::move(*x));
          return v;
        });
      }
    }
  };
  auto join = std::make_shared<Join>(futures.size());
  Future<R> result = join->out.future();
  if (futures.empty()) {
    join->finish();
    return result;
  }
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].on_done([join, i](Future<T> f) {
      auto* s = detail::state_of(f);
      std::exception_ptr e;
      if (s->phase() == detail::SharedStateBase::kCancelled) {
        e = std::make_exception_ptr(Cancelled());
      } else if (s->error) {
        e = s->error;
      } else if constexpr (!std::is_void_v<T>) {
        join->values[i].emplace(f.get());
      }
      if (e) {
        std::lock_guard lk(join->mu);
        if (!join->first_error) join->first_error = e;
      }
      if (join->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) join->finish();
    });
  }
  return result;
}

// Completes with the index of the first input to complete (by value, exception or cancellation).
// Throws std::invalid_argument for an empty vector. Never blocks.
template <class T>
Future<std::size_t> when_any(std::vector<Future<T>> futures) {
  if (futures.empty()) throw std::invalid_argument("taskpool::when_any: no futures");
  auto out = std::make_shared<detail::Promise<std::size_t>>();
  Future<std::size_t> result = out->future();
  for (std::size_t i = 0; i < futures.size(); ++i) {
    futures[i].on_done([out, i] { out->fulfil_with([i] { return i; }); });  // first claim wins
  }
  return result;
}

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class T>
struct WaitResult {
  std::vector<Future<T>> done, not_done;
};

namespace detail {
struct WaitLatch {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t completed = 0;  // guarded by mu
  bool failed = false;        // guarded by mu: some input ended with an exception
};
}  // namespace detail

// Python's concurrent.futures.wait: blocks until the condition holds or `timeout` elapses, then
// splits the futures into done and not_done (input order kept within each).
template <class T, class Rep, class Period>
WaitResult<T> wait(std::vector<Future<T>>& futures, std::chrono::duration<Rep, Period> timeout,
                   ReturnWhen when = ReturnWhen::all_completed) {
  auto latch = std::make_shared<detail::WaitLatch>();
  for (auto& f : futures) {
    f.on_done([latch](Future<T> g) {
      bool threw = detail::state_of(g)->phase() == detail::SharedStateBase::kDone && detail::state_of(g)->error;
      std::lock_guard lk(latch->mu);
      ++latch->completed;
      latch->failed = latch->failed || threw;
      latch->cv.notify_all();
    });
  }
  const std::size_t n = futures.size();
  auto satisfied = [&] {
    switch (when) {
      case ReturnWhen::first_completed: return n == 0 || latch->completed > 0;
      case ReturnWhen::first_exception: return latch->failed || latch->completed == n;
      case ReturnWhen::all_completed: break;
    }
    return latch->completed == n;
  };
  {
    std::unique_lock lk(latch->mu);
    latch->cv.wait_until(lk, std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(timeout), satisfied);
  }
  WaitResult<T> r;
  for (auto& f : futures) (f.ready() ? r.done : r.not_done).push_back(f);
  return r;
}
template <class T>
WaitResult<T> wait(std::vector<Future<T>>& futures, ReturnWhen when = ReturnWhen::all_completed) {
  return wait(futures, std::chrono::hours(24 * 365 * 100), when);
}

// A range over `futures` in completion order:  for (auto f : as_completed(fs)) use(f.get());
// Iterating blocks until the next future completes. Each future is yielded exactly once.
template <class T>
class AsCompleted {
  struct Core {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::size_t> ready;  // guarded by mu
    std::vector<Future<T>> futures;
  };

 public:
  explicit AsCompleted(std::vector<Future<T>> futures) : core_(std::make_shared<Core>()) {
    core_->futures = std::move(futures);
    for (std::size_t i = 0; i < core_->futures.size(); ++i) {
      // The callback keeps core_ alive until the future completes (pool tasks always complete).
      core_->futures[i].on_done([c = core_, i] {
        std::lock_guard lk(c->mu);
        c->ready.push_back(i);
        c->cv.notify_one();
      });
    }
  }
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;

  std::size_t size() const noexcept { return core_->futures.size(); }
  // The next completed future, waiting up to `d`; empty when none completed in time or all
  // have been yielded.
  std::optional<Future<T>> next_for(std::chrono::steady_clock::duration d) {
    std::unique_lock lk(core_->mu);
    if (yielded_ == core_->futures.size()) return std::nullopt;
    if (!core_->cv.wait_for(lk, d, [&] { return !core_->ready.empty(); })) return std::nullopt;
    return pop(lk);
  }
  // The next completed future (blocks); empty once all have been yielded.
  std::optional<Future<T>> next() {
    std::unique_lock lk(core_->mu);
    if (yielded_ == core_->futures.size()) return std::nullopt;
    core_->cv.wait(lk, [&] { return !core_->ready.empty(); });
    return pop(lk);
  }

  class iterator {
   public:
    using value_type = Future<T>;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    explicit iterator(AsCompleted* r) : r_(r) { advance(); }
    const Future<T>& operator*() const { return *cur_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    void operator++(int) { advance(); }
    bool operator==(std::default_sentinel_t) const { return !cur_.has_value(); }

   private:
    void advance() { cur_ = r_->next(); }
    AsCompleted* r_ = nullptr;
    std::optional<Future<T>> cur_;
  };
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  Future<T> pop(std::unique_lock<std::mutex>&) {
    std::size_t i = core_->ready.front();
    core_->ready.pop_front();
    ++yielded_;
    return core_->futures[i];
  }
  std::shared_ptr<Core> core_;
  std::size_t yielded_ = 0;  // guarded by core_->mu
};

template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> futures) {
  return AsCompleted<T>(std::move(futures));
}

}  // namespace taskpool
