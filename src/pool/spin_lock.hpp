// src/pool/spin_lock.hpp — a test-and-test-and-set lock for critical sections of a few stores.
//
// The injection lists and the node depot are locked for a handful of pointer writes; a std::mutex
// under contention from a spinning worker turned each push into a futex round trip. Waiters spin
// briefly on a read-only load (no cache-line ping-pong), then yield, so a preempted holder costs a
// yield, not a burned time slice. acquire/release on the flag order the protected data.
// SpinLock is a capability for Clang's -Wthread-safety (detail/thread_annotations.hpp): members
// it protects are TP_GUARDED_BY it and are locked with SpinGuard, which the analysis follows.
//
// Thread-safety: as a mutex. Blocking: lock() spins, then yields, until the lock is free;
// try_lock() and unlock() never block.
#pragma once

#include <atomic>
#include <thread>

#include "pool/cpu_relax.hpp"
#include "taskpool/detail/thread_annotations.hpp"

namespace taskpool::detail {

class TP_CAPABILITY("mutex") SpinLock {
 public:
  void lock() noexcept TP_ACQUIRE() {
    for (int spins = 0;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 100) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept TP_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept TP_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Holds a SpinLock for a scope (std::lock_guard, with the annotations the analysis needs).
class TP_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(SpinLock& m) noexcept TP_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~SpinGuard() TP_RELEASE() { m_.unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  SpinLock& m_;
};

}  // namespace taskpool::detail
