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
  using Key = std::uint32_t;

  void begin_search() noexcept { state_.fetch_add(kSearchOne, std::memory_order_seq_cst); }
  // The caller found work while searching.
  void end_search() noexcept {
    std::uint64_t s = state_.fetch_sub(kSearchOne, std::memory_order_seq_cst);
    if (searching_of(s) == 1 && waiters_of(s) != 0) wake(1);
  }
  // Searching -> registered to sleep; returns the key for wait(). The caller re-checks every
  // queue next (after the heavy barrier, which orders deque pushes before that re-check).
  Key search_to_wait() noexcept {
    Key k = epoch_of(state_.fetch_add(kWaiterOne - kSearchOne, std::memory_order_seq_cst));
    if (asymmetric_) heavy_barrier();
    return k;
  }
  // Not searching -> registered to sleep (used by a retiring worker's final check).
  Key prepare_wait() noexcept {
    Key k = epoch_of(state_.fetch_add(kWaiterOne, std::memory_order_seq_cst));
    if (asymmetric_) heavy_barrier();
    return k;
  }
  void cancel_wait() noexcept { state_.fetch_sub(kWaiterOne, std::memory_order_seq_cst); }
  // Sleeps unless notified since the key was taken; false when `timeout` elapsed. Afterwards the
  // caller is a searcher (call end_search() or search_to_wait() next).
  bool wait(Key key, std::optional<std::chrono::nanoseconds> timeout) noexcept {
    bool woke = futex_wait(epoch_word(), key, timeout);
    state_.fetch_add(kSearchOne - kWaiterOne, std::memory_order_seq_cst);
    return woke;
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
    if (!asymmetric_) {
      notify_one();
      return;
    }
    light_barrier();
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    if (searching_of(s) != 0 || waiters_of(s) == 0) return;
    wake(1);
  }
  bool asymmetric() const noexcept { return asymmetric_; }
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
  static Key epoch_of(std::uint64_t s) noexcept { return static_cast<Key>(s >> 32); }
  const void* epoch_word() const noexcept { return reinterpret_cast<const char*>(&state_) + 4; }

  alignas(64) std::atomic<std::uint64_t> state_{0};
  const bool asymmetric_ = asymmetric_barriers();
};

}  // namespace taskpool::detail
