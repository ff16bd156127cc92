// src/pool/spin_lock.hpp — a test-and-test-and-set lock for critical sections of a few stores.
//
// The injection lists are locked for a handful of pointer writes; a std::mutex under contention
// from a spinning worker turned each push into a futex round trip. Waiters spin briefly on a
// read-only load (no cache-line ping-pong), then yield, so a preempted holder costs a yield, not
// a burned time slice. acquire/release on the flag order the protected data.
#pragma once

#include <atomic>
#include <thread>

namespace taskpool::detail {

class SpinLock {
 public:
  void lock() noexcept {
    for (int spins = 0;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins < 100) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();
        }
      }
    }
  }
  bool try_lock() noexcept {
    return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace taskpool::detail
