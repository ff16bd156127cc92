// taskpool/completion_queue.hpp — callbacks that run on the thread that drains the queue.
//
// The C++ form of the origin notes' result queue drained with poll()/wait(): a task's done or
// exception callback is registered with `future.then(cq, f)`; when the task finishes the callback
// is *queued* here, and it runs only when the owner calls poll(), run_for() or wait_all(). A
// single-threaded main loop (a GUI, a bot's event loop) therefore never sees callbacks on a
// foreign thread.
//
// Thread-safety: every member may be called from any thread, concurrently. Callbacks run on the
// thread that drains, one at a time per draining thread; if several threads drain at once each
// callback still runs exactly once.
// Blocking: poll() never blocks (it runs what is ready now). run_for() waits up to its duration.
// wait_all() blocks until pending() == 0. pending() never blocks.
// Destruction: callbacks that have not run are dropped and their result futures become cancelled.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>

#include "taskpool/detail/completion_job.hpp"

namespace taskpool {

class CompletionQueue {
 public:
  CompletionQueue();
  ~CompletionQueue();
  CompletionQueue(const CompletionQueue&) = delete;
  CompletionQueue& operator=(const CompletionQueue&) = delete;

  // Runs every callback that is ready now; returns how many ran. Never blocks.
  std::size_t poll();
  // Runs callbacks as they become ready until `d` has elapsed or nothing is pending; returns how
  // many ran. Blocks up to `d`.
  std::size_t run_for(std::chrono::steady_clock::duration d);
  // Runs callbacks until none is pending (registered but not yet run). Blocks.
  void wait_all();
  // Callbacks registered and not yet run, whether or not their task has finished.
  std::size_t pending() const;

  // Library use (Future::then(cq, f)): the shared core that callbacks are delivered through
  // (taskpool/detail/completion_job.hpp).
  std::shared_ptr<detail::CompletionQueueCore> core() const noexcept { return core_; }

 private:
  std::shared_ptr<detail::CompletionQueueCore> core_;
};

}  // namespace taskpool
