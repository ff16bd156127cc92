// src/pool/event_count.hpp — lets idle workers spin, then sleep, without losing a wake-up.
//
// Design note. state_ packs [epoch:32 | searching:16 | waiters:16] into one 64-bit atomic, so
// one RMW reads or changes all three consistently.
//   searching: workers spinning through the queues looking for work; waiters: workers registered
//   to sleep (between prepare_wait and the end of wait/cancel_wait).
//   Worker:    begin_search()            searching+1 (RMW)
//              ... spin over the queues ...
//              found work:   end_search() -> if it was the last searcher and someone sleeps,
//                            wake one (it may find more work: keeps idle capacity looking)
//              no work:      key = search_to_wait()   (one RMW: searching-1, waiters+1)
//                            re-check every queue; if work: cancel_wait(); else wait(key)
//                            waking from wait() makes the worker a searcher again (one RMW)
//   Notifier:  publish the task (queue push), then notify_one(): one seq_cst RMW on state_;
//              if searching > 0, nothing more (a searcher will find it); else if waiters > 0,
//              epoch+1 and a futex wake of one sleeper.
// Why no wake-up is lost: every worker transition and every notify is an RMW on state_, so they
// are totally ordered by state_'s modification order, and each later RMW reads from (synchronizes
// with) the earlier ones. If the notifier's RMW comes before a worker's next transition, that
// transition happens-after the push, and the worker's following queue check sees it. If it comes
// after, the notifier sees the worker as searching (then the worker still has a re-check ahead
// of it before it can sleep: search_to_wait + re-check) or as a waiter (then it is woken: the
// epoch moved, so futex_wait(key) returns at once or is woken).
// Every operation is a seq_cst RMW, never a standalone fence, so ThreadSanitizer models it.
// The exception is the hot path of submission - a worker's push into its own deque, an outside
// thread's append to an injection list - which publishes with plain (release) stores and then
// calls notify_one_after_publish(), reading state_ without an RMW. Its StoreLoad ordering comes
// from an asymmetric barrier (membarrier.hpp): the workers about to sleep pay for it -
// search_to_wait()/prepare_wait() run heavy_barrier() after their RMW and before their re-check -
// so a publisher either sees the new waiter or the waiter sees the task. Where the kernel has no
// membarrier, notify_one_after_publish() is the RMW notify_one().
// Barrier failure. membarrier can fail at run time (ENOMEM). A failed heavy barrier orders
// nothing, so the caller's re-check may miss a task a plain-load publisher just pushed; Key
// says so (ordered == false) and then (a) wait() sleeps at most kUnorderedSleep and returns as if
// woken, so the re-check runs again soon, (b) a retiring worker stays (pool_core.hpp), and
// (c) protocol_ moves from kAsymmetric to kSwitching, where publishers notify with the RMW.
// A publisher reads protocol_ after its push (light_barrier() keeps the compiler from hoisting
// the read), so once a heavy barrier succeeds after the switch, every publisher that still read
// kAsymmetric read it before that barrier's point in its program, hence pushed before it, and its
// push is visible: the sleepers' heavy barriers are no longer needed (kSymmetric). Sleepers in
// kSwitching keep trying the barrier until one succeeds; each failure costs one bounded sleep.
// The futex word is the epoch half of state_ (little-endian: bytes 4..7).
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

#include "pool/futex.hpp"
#include "pool/membarrier.hpp"

namespace taskpool::detail {

class EventCount {
  static_assert(std::endian::native == std::endian::little, "the futex word is the high half of state_");
  static constexpr std::uint64_t kWaiterOne = 1, kSearchOne = std::uint64_t{1} << 16, kEpochOne = std::uint64_t{1} << 32;
  static std::uint32_t waiters_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s & 0xffff); }
  static std::uint32_t searching_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>((s >> 16) & 0xffff); }

 public:
  // How publishers notify and sleepers order their re-check (see "Barrier failure").
  enum Protocol : int { kAsymmetric = 0, kSwitching = 1, kSymmetric = 2 };
  // The longest sleep whose re-check could not be ordered against publishers.
  static constexpr std::chrono::milliseconds kUnorderedSleep{1};
  struct Key {
    std::uint32_t epoch;
    bool ordered;  // the caller's re-check sees every task published before its registration
  };

  void begin_search() noexcept { state_.fetch_add(kSearchOne, std::memory_order_seq_cst); }
  // The caller found work while searching.
  void end_search() noexcept {
    std::uint64_t s = state_.fetch_sub(kSearchOne, std::memory_order_seq_cst);
    if (searching_of(s) == 1 && waiters_of(s) != 0) wake(1);
  }
  // Searching -> registered to sleep; returns the key for wait(). The caller re-checks every
  // queue next (after the heavy barrier, which orders deque pushes before that re-check).
  Key search_to_wait() noexcept {
    std::uint32_t e = epoch_of(state_.fetch_add(kWaiterOne - kSearchOne, std::memory_order_seq_cst));
    return {e, sleeper_barrier()};
  }
  // Not searching -> registered to sleep (used by a retiring worker's final check).
  Key prepare_wait() noexcept {
    std::uint32_t e = epoch_of(state_.fetch_add(kWaiterOne, std::memory_order_seq_cst));
    return {e, sleeper_barrier()};
  }
  void cancel_wait() noexcept { state_.fetch_sub(kWaiterOne, std::memory_order_seq_cst); }
  // Sleeps unless notified since the key was taken; false when `timeout` elapsed. An unordered
  // key sleeps at most kUnorderedSleep and then returns true (a spurious wake-up: re-check).
  // Afterwards the caller is a searcher (call end_search() or search_to_wait() next).
  bool wait(Key key, std::optional<std::chrono::nanoseconds> timeout) noexcept {
    bool capped = false;
    if (!key.ordered && (!timeout || *timeout > kUnorderedSleep)) {
      timeout = kUnorderedSleep;
      capped = true;
    }
    bool woke = futex_wait(epoch_word(), key.epoch, timeout);
    state_.fetch_add(kSearchOne - kWaiterOne, std::memory_order_seq_cst);
    return woke || capped;
  }
  // For a worker that just changed a count submitters read after publishing (go_busy: the idle_
  // RMW) and now checks the queues: orders that check after the change as seen by publishers.
  // In the RMW protocol this is the seq_cst fence, as an RMW on state_: every notifier RMWs
  // state_ after its push and before it reads the count, so whichever RMW comes second in
  // state_'s order sees the other side's write (an RMW rather than atomic_thread_fence, which
  // ThreadSanitizer does not model). Otherwise the heavy barrier. False when that failed: the
  // check then proves nothing and the caller must act as if work were queued.
  bool order_with_publishers() noexcept {
    if (protocol_.load(std::memory_order_acquire) == kSymmetric) {
      state_.fetch_add(0, std::memory_order_seq_cst);
      return true;
    }
    return sleeper_barrier();
  }
  void notify_one() noexcept {
    // The RMW (not a load) is what orders the caller's push before any later transition.
    std::uint64_t s = state_.fetch_add(0, std::memory_order_seq_cst);
    if (searching_of(s) != 0 || waiters_of(s) == 0) return;
    wake(1);
  }
  // After work was published with plain stores (see the design note): a plain load, ordered by
  // the sleepers' heavy barrier. A load also leaves the shared cache line shared, where an RMW
  // would take it from every other core on each submission.
  void notify_one_after_publish() noexcept {
    light_barrier();  // the push before the protocol read (see "Barrier failure")
    if (protocol_.load(std::memory_order_relaxed) != kAsymmetric) {
      notify_one();
      return;
    }
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    if (searching_of(s) != 0 || waiters_of(s) == 0) return;
    wake(1);
  }
  int protocol() const noexcept { return protocol_.load(std::memory_order_relaxed); }
  void notify_all() noexcept {
    std::uint64_t s = state_.fetch_add(0, std::memory_order_seq_cst);
    if (waiters_of(s) != 0) wake(INT_MAX);
  }
  std::uint32_t waiters() const noexcept { return waiters_of(state_.load(std::memory_order_relaxed)); }
  std::uint32_t searching() const noexcept { return searching_of(state_.load(std::memory_order_relaxed)); }

 private:
  void wake(int n) noexcept {
    state_.fetch_add(kEpochOne, std::memory_order_seq_cst);
    futex_wake(epoch_word(), n);
  }
  // The sleeper's half of the asymmetric protocol, after its RMW on state_ and before its
  // re-check. True when the re-check is ordered against every publisher.
  bool sleeper_barrier() noexcept {
    int p = protocol_.load(std::memory_order_acquire);
    if (p == kSymmetric) return true;
    if (heavy_barrier()) {
      // A barrier that began after the switch was visible: no plain-load publisher is left.
      if (p == kSwitching) protocol_.store(kSymmetric, std::memory_order_release);
      return true;
    }
    if (p == kAsymmetric) protocol_.compare_exchange_strong(p, kSwitching, std::memory_order_seq_cst);
    return false;
  }
  static std::uint32_t epoch_of(std::uint64_t s) noexcept { return static_cast<std::uint32_t>(s >> 32); }
  const void* epoch_word() const noexcept { return reinterpret_cast<const char*>(&state_) + 4; }

  alignas(64) std::atomic<std::uint64_t> state_{0};
  std::atomic<int> protocol_{asymmetric_barriers() ? kAsymmetric : kSymmetric};
};

}  // namespace taskpool::detail
