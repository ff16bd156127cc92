// src/pool/event_count.hpp — lets idle workers sleep without losing a wake-up.
//
// Design note. state_ packs [epoch:32 | waiters:32] into one 64-bit atomic.
//   Waiter:    key = prepare_wait()   (seq_cst RMW: waiters+1, read epoch)
//              re-check every queue; if work: cancel_wait(); else wait(key)
//   Notifier:  publish the task (queue push), then notify_one(): a seq_cst RMW on state_ and,
//              only if waiters > 0, epoch+1 and a futex wake of one sleeper.
// Why no wake-up is lost: the waiter's registration RMW and the notifier's RMW are ordered in
// state_'s modification order. If the notifier's comes first, the waiter's RMW reads from it
// (RMWs extend release sequences), so the push happens-before the waiter's re-check, which finds
// the task. If the waiter's comes first, the notifier sees waiters > 0 and bumps the epoch; the
// waiter's futex_wait(key) then either returns at once (epoch != key) or is woken.
// Every operation is a seq_cst RMW, never a standalone fence, so ThreadSanitizer models it.
// The futex word is the epoch half of state_ (little-endian: bytes 4..7).
#pragma once

#include <atomic>
#include <bit>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

#include "pool/futex.hpp"

namespace taskpool::detail {

class EventCount {
  static_assert(std::endian::native == std::endian::little, "the futex word is the high half of state_");
  static constexpr std::uint64_t kWaiterOne = 1, kEpochOne = std::uint64_t{1} << 32;

 public:
  using Key = std::uint32_t;

  Key prepare_wait() noexcept { return epoch_of(state_.fetch_add(kWaiterOne, std::memory_order_seq_cst)); }
  void cancel_wait() noexcept { state_.fetch_sub(kWaiterOne, std::memory_order_seq_cst); }
  // Sleeps unless notified since prepare_wait(); false when `timeout` elapsed. Always leaves
  // the waiter set (no cancel_wait() afterwards).
  bool wait(Key key, std::optional<std::chrono::nanoseconds> timeout) noexcept {
    bool woke = futex_wait(epoch_word(), key, timeout);
    state_.fetch_sub(kWaiterOne, std::memory_order_seq_cst);
    return woke;
  }
  void notify_one() noexcept { notify(1); }
  void notify_all() noexcept { notify(INT_MAX); }
  std::uint32_t waiters() const noexcept {
    return static_cast<std::uint32_t>(state_.load(std::memory_order_relaxed));
  }

 private:
  void notify(int n) noexcept {
    // The RMW (not a load) is what orders the caller's push before any later registration.
    std::uint64_t s = state_.fetch_add(0, std::memory_order_seq_cst);
    if (static_cast<std::uint32_t>(s) == 0) return;
    state_.fetch_add(kEpochOne, std::memory_order_seq_cst);
    futex_wake(epoch_word(), n);
  }
  static Key epoch_of(std::uint64_t s) noexcept { return static_cast<Key>(s >> 32); }
  const void* epoch_word() const noexcept { return reinterpret_cast<const char*>(&state_) + 4; }

  alignas(64) std::atomic<std::uint64_t> state_{0};
};

}  // namespace taskpool::detail
