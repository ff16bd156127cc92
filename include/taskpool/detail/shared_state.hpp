// taskpool/detail/shared_state.hpp — the state a Future shares with the task that completes it:
// one 64-bit word (phase, flags, reference count), the outcome, and a lock-free callback stack.
// Not part of the API; src/pool/future.cpp has the non-template half.
//
// Design note — the state word and the callback stack (lock-free).
//  state_ is 64 bits: the low half holds the phase and two flags (it is also the futex word), the
//  high half the reference count, so completing a task and dropping its reference can be one RMW.
//  bits 0-1: phase, moving only forward: pending(0) -> running(1) -> done(2), or
//  pending -> cancelled(3). A promise fulfilled without a "running" phase is still claimed first
//  through running, so exactly one party ever writes the outcome.
//  bit 2: "a thread sleeps on this word" - set by waiters before futex-waiting, so finish() makes a
//  wake-up system call only when someone sleeps.
//  bit 3: "callbacks may be registered" - set by add_callback() (while the phase is not final)
//  before it pushes its node, so completion touches the callback stack only when it has to. The
//  completing RMW returns the old word: with the bit clear no callback was ever pushed and none
//  can be (a later add_callback sees the final phase and runs its node itself).
//  Memory ordering: the outcome (value/error) is written only by the thread that moved the phase
//  to running, before the release RMW to done; readers load the phase with acquire, so a reader
//  that sees done sees the outcome. callbacks_ is a Treiber stack closed by the sentinel kClosed:
//  completion exchanges it (acq_rel) for kClosed and runs what it took; add_callback() CASes a node
//  in unless it sees kClosed, and then runs the node itself. Every node runs exactly once, after
//  the outcome is published.
//  References: every Future copy and the task (or timer, or promise) that will complete the state
//  hold one; whoever takes the count to zero deletes the state. A task's state is born with two
//  (the queue's and the Future's). The last owner releases without an RMW (nobody can take another
//  reference from it). finish_and_release() folds the task's release into its completing RMW only
//  while neither flag is set: a waiter or a callback still needs the state after completion.
//
// Thread-safety: every member may be called concurrently, except that only the thread that won
// try_start() writes the outcome and calls finish(). Blocking: wait()/wait_until() block (wait()
// helps on a pool worker, see future.hpp); everything else is lock-free.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

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

  void wait() const;                                                      // may help (future.hpp)
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
SharedState<T>* state_of(const Future<T>& f) noexcept;  // defined in future_impl.hpp

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
  Future<T> future() const;  // defined in future_impl.hpp
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

}  // namespace detail
}  // namespace taskpool
