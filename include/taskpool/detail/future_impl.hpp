// taskpool/detail/future_impl.hpp — the bodies of Future's member templates and of the
// combinators declared in taskpool/future.hpp. Included at the end of future.hpp; not part of the
// API.
//
// Design note. Every continuation is a callback node on the source's state (shared_state.hpp):
// then() creates a Promise for the result and registers a node that runs the continuation and
// completes it; then(cq, f) registers the node with the queue first (cq_add_pending) and has it
// deliver a Job instead of running f. The combinators keep their bookkeeping in a block shared
// (std::shared_ptr) by every callback they register, so it lives until the last input completes:
//  - when_all: each input writes only its own slot, then decrements `remaining` (acq_rel); the
//    input that takes it to zero therefore sees every slot and every first_error write (first_error
//    is written under mu, by inputs that failed).
//  - when_any: every input tries to fulfil one Promise; the state's claim (try_start) lets the
//    first win.
//  - wait / as_completed: a mutex and a condition variable; callbacks count or queue under the
//    mutex and notify.
// Thread-safety and blocking: as documented in future.hpp.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "taskpool/detail/completion_job.hpp"
#include "taskpool/detail/orphan_exception.hpp"
#include "taskpool/future.hpp"

namespace taskpool {
namespace detail {

template <class T>
SharedState<T>* state_of(const Future<T>& f) noexcept {
  return f.s_;
}
template <class T>
Future<T> Promise<T>::future() const {
  return Future<T>::from_state(s_);
}

}  // namespace detail

template <class T>
template <class Clock, class Duration>
inline std::future_status Future<T>::wait_until(std::chrono::time_point<Clock, Duration> t) const {
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

template <class T>
template <class F>
inline auto Future<T>::then(F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>> {
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

template <class T>
template <class F>
inline auto Future<T>::then(CompletionQueue& cq, F&& f) -> Future<detail::then_result_t<T, std::decay_t<F>>> {
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

template <class T>
template <class F>
inline void Future<T>::on_done(F&& f) {
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

// ---- Combinators ---------------------------------------------------------------------------

template <class T>
auto when_all(std::vector<Future<T>> futures) -> Future<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> {
  using R = std::conditional_t<std::is_void_v<T>, void, std::vector<T>>;
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
      } else {
        static_cast<void>(i);  // void results have no slot
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

namespace detail {
struct WaitLatch {
  std::mutex mu;
  std::condition_variable cv;
  std::size_t completed = 0;  // guarded by mu
  bool failed = false;        // guarded by mu: some input ended with an exception
};
}  // namespace detail

template <class T, class Rep, class Period>
WaitResult<T> wait(std::vector<Future<T>>& futures, std::chrono::duration<Rep, Period> timeout, ReturnWhen when) {
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
WaitResult<T> wait(std::vector<Future<T>>& futures, ReturnWhen when) {
  return wait(futures, std::chrono::hours(24 * 365 * 100), when);
}

namespace detail {
template <class T>
struct AsCompletedCore {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::size_t> ready;  // guarded by mu
  std::vector<Future<T>> futures;
};
}  // namespace detail

template <class T>
AsCompleted<T>::AsCompleted(std::vector<Future<T>> futures) : core_(std::make_shared<detail::AsCompletedCore<T>>()) {
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

template <class T>
std::size_t AsCompleted<T>::size() const noexcept {
  return core_->futures.size();
}

template <class T>
std::optional<Future<T>> AsCompleted<T>::next_for(std::chrono::steady_clock::duration d) {
  std::unique_lock lk(core_->mu);
  if (yielded_ == core_->futures.size()) return std::nullopt;
  if (!core_->cv.wait_for(lk, d, [&] { return !core_->ready.empty(); })) return std::nullopt;
  return pop();
}

template <class T>
std::optional<Future<T>> AsCompleted<T>::next() {
  std::unique_lock lk(core_->mu);
  if (yielded_ == core_->futures.size()) return std::nullopt;
  core_->cv.wait(lk, [&] { return !core_->ready.empty(); });
  return pop();
}

template <class T>
Future<T> AsCompleted<T>::pop() {
  std::size_t i = core_->ready.front();
  core_->ready.pop_front();
  ++yielded_;
  return core_->futures[i];
}

template <class T>
class AsCompleted<T>::iterator {
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

template <class T>
typename AsCompleted<T>::iterator AsCompleted<T>::begin() {
  return iterator(this);
}

}  // namespace taskpool
