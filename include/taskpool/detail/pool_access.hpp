// taskpool/detail/pool_access.hpp — the pool's detail interface for the layers built on it
// (timers) and for tests: the few calls they need that are not ThreadPool's API. Not part of the
// API; defined in src/pool/thread_pool.cpp. ThreadPool befriends PoolAccess and nothing else, so
// no other layer reaches into the pool.
//
// Design note — timers fired by workers (DueSource). A Scheduler's timer thread may wait
// milliseconds for a time slice when every core runs pool tasks, so the pool's workers also fire
// due timers between tasks. A timer set registers itself as a DueSource; the pool keeps a lower
// bound (a "hint") on the earliest due time of every source, which a source lowers with note_due()
// whenever its earliest timer moves. A worker that finds the hint passed takes the sources' lock
// (try_lock: one firer at a time), resets the hint and asks every source, lowering the hint to
// each answer, so a timer added meanwhile is either seen by fire_due() or lowers the hint after
// the reset. fire_due() runs on a worker: it launches every timer due at `now` without blocking on
// the pool and returns the earliest remaining due time (time_point::max() if none).
// remove_due_source() returns once no worker is inside that source's fire_due().
//
// Thread-safety: every function may be called from any thread, concurrently. Blocking: none
// blocks on tasks; add/remove_due_source and the close hooks take a pool mutex briefly (a close
// hook added after shutdown began runs at once, on the calling thread).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

namespace taskpool {

class ThreadPool;

namespace detail {

class TaskNode;

class DueSource {
 public:
  virtual std::chrono::steady_clock::time_point fire_due(std::chrono::steady_clock::time_point now) noexcept = 0;

 protected:
  ~DueSource() = default;
};

struct PoolAccess {
  // Queues `node` (taking ownership) past a bounded queue's capacity: a timed task, admitted when
  // it was scheduled. Never runs it inline. Throws as submit() does (PoolClosed, BrokenPool,
  // ThreadStartFailed), having discarded it.
  static void enqueue_overflow(ThreadPool& pool, TaskNode* node);
  // Calls `hook` once when shutdown begins (at once if it already has); returns an id for
  // remove_close_hook (0 when it ran at once).
  static std::size_t add_close_hook(ThreadPool& pool, std::function<void()> hook);
  static void remove_close_hook(ThreadPool& pool, std::size_t id);
  static void add_due_source(ThreadPool& pool, DueSource* s);
  static void remove_due_source(ThreadPool& pool, DueSource* s);
  // A timer of a registered source is due at `t`.
  static void note_due(ThreadPool& pool, std::chrono::steady_clock::time_point t) noexcept;

  // Read-only views of the engine, for tests.
  // The event count's wake-up protocol: 0 asymmetric (membarrier), 1 switching to RMWs after a
  // failed barrier, 2 symmetric (RMW notifications).
  static int wakeup_protocol(const ThreadPool& pool) noexcept;
  static std::size_t sleeping_workers(const ThreadPool& pool) noexcept;  // registered to sleep
  static std::size_t idle_waiters(const ThreadPool& pool) noexcept;      // in wait_idle or close
};

}  // namespace detail
}  // namespace taskpool
