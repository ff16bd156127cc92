// taskpool/future.hpp — Future<T>: a shared handle to the outcome of one task, and the
// combinators over several (when_all, when_any, wait, as_completed).
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
//   when_all, when_any  never block. wait(futures, ...) blocks up to its timeout; iterating
//   as_completed blocks until the next future completes. Neither helps.
//
// Continuations: then(f) and on_done(f) run f on the thread that completes the task (or at once,
// on the calling thread, if it is already complete). Keep them short; use then(cq, f) to run the
// continuation on a CompletionQueue's draining thread instead. An exception escaping an on_done
// callback is written to stderr (it has no other owner); one escaping then(f) completes the
// returned future with it.
//
// The state word, the callback stack and the reference count are described in
// taskpool/detail/shared_state.hpp; the member templates' bodies are in detail/future_impl.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <future>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskpool/completion_queue.hpp"
#include "taskpool/detail/continuation.hpp"
#include "taskpool/detail/shared_state.hpp"
#include "taskpool/errors.hpp"

namespace taskpool {

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

  // False for a default-constructed or moved-from Future; every other member requires true
  // (std::logic_error otherwise).
  bool valid() const noexcept { return s_ != nullptr; }

  // Waits for the outcome, then returns the value, rethrows the task's exception, or throws
  // Cancelled. Blocks (helping on pool workers, see above).
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
  // Wait at most `d` / until `t` (any clock; other clocks than steady_clock are re-read at least
  // every 100 ms). Never help.
  template <class Rep, class Period>
  std::future_status wait_for(std::chrono::duration<Rep, Period> d) const {
    return wait_until(std::chrono::steady_clock::now() + std::chrono::ceil<std::chrono::steady_clock::duration>(d));
  }
  template <class Clock, class Duration>
  std::future_status wait_until(std::chrono::time_point<Clock, Duration> t) const;

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
  auto then(F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>>;
  // As then(f), but f runs on the thread that drains `cq` (poll/run_for/wait_all).
  template <class F>
  auto then(CompletionQueue& cq, F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>>;
  // Calls f(Future<T>) — or f() — once the outcome is known, on the completing thread.
  template <class F>
  void on_done(F&& f);

  // Library use (task nodes, timers, promises): adopt one reference to `s` / take a new one.
  static Future adopt(detail::SharedState<T>* s) noexcept {
    Future f;
    f.s_ = s;
    return f;
  }
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

// ---- Combinators ---------------------------------------------------------------------------

// Completes when every input has completed: with all values in input order, or with the first
// failure (an exception, or Cancelled for a cancelled input) in completion order.
template <class T>
auto when_all(std::vector<Future<T>> futures) -> Future<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>>;

// Completes with the index of the first input to complete (by value, exception or cancellation).
// Throws std::invalid_argument for an empty vector.
template <class T>
Future<std::size_t> when_any(std::vector<Future<T>> futures);

enum class ReturnWhen { first_completed, first_exception, all_completed };

template <class T>
struct WaitResult {
  std::vector<Future<T>> done, not_done;
};

// Python's concurrent.futures.wait: blocks until the condition holds or `timeout` elapses, then
// splits the futures into done and not_done (input order kept within each).
template <class T, class Rep, class Period>
WaitResult<T> wait(std::vector<Future<T>>& futures, std::chrono::duration<Rep, Period> timeout,
                   ReturnWhen when = ReturnWhen::all_completed);
template <class T>
WaitResult<T> wait(std::vector<Future<T>>& futures, ReturnWhen when = ReturnWhen::all_completed);

namespace detail {
template <class T>
struct AsCompletedCore;  // future_impl.hpp
}

// A range over `futures` in completion order:  for (auto f : as_completed(fs)) use(f.get());
// Each future is yielded exactly once. Not copyable; one thread iterates it.
template <class T>
class AsCompleted {
 public:
  explicit AsCompleted(std::vector<Future<T>> futures);
  AsCompleted(const AsCompleted&) = delete;
  AsCompleted& operator=(const AsCompleted&) = delete;

  std::size_t size() const noexcept;
  // The next completed future (blocks); empty once all have been yielded.
  std::optional<Future<T>> next();
  // As next(), waiting at most `d`; empty also when none completed in time.
  std::optional<Future<T>> next_for(std::chrono::steady_clock::duration d);

  class iterator;  // an input iterator; ++ blocks like next()
  iterator begin();
  std::default_sentinel_t end() { return {}; }

 private:
  Future<T> pop();  // with core_->mu held
  std::shared_ptr<detail::AsCompletedCore<T>> core_;
  std::size_t yielded_ = 0;  // guarded by core_->mu
};

template <class T>
AsCompleted<T> as_completed(std::vector<Future<T>> futures) {
  return AsCompleted<T>(std::move(futures));
}

}  // namespace taskpool

#include "taskpool/detail/future_impl.hpp"
