// src/pool/completion_queue.cpp — see taskpool/completion_queue.hpp and
// taskpool/detail/completion_job.hpp.
//
// Design note. One mutex guards the ready jobs, the pending count and the closed flag; the
// condition variable is signalled on every delivery and whenever pending drops, which is what
// run_for() and wait_all() wait for. A job runs with the mutex released (a callback may register
// or deliver more), so run_one() drops and retakes it around the call.
#include <condition_variable>
#include <deque>

#include "taskpool/completion_queue.hpp"
#include "taskpool/detail/orphan_exception.hpp"
#include "taskpool/detail/thread_annotations.hpp"

namespace taskpool {
namespace detail {

class CompletionQueueCore {
 public:
  mutable Mutex mu;
  std::condition_variable cv;                                // on delivery and when pending drops
  std::deque<std::unique_ptr<Job>> ready TP_GUARDED_BY(mu);  // delivered, not yet run
  std::size_t pending TP_GUARDED_BY(mu) = 0;                 // registered and not yet run
  bool closed TP_GUARDED_BY(mu) = false;                     // the CompletionQueue was destroyed

  // Runs one ready job if there is one, with mu released around the call; mu is held on entry
  // and on return.
  bool run_one() TP_REQUIRES(mu) {
    if (ready.empty()) return false;
    std::unique_ptr<Job> job = std::move(ready.front());
    ready.pop_front();
    mu.unlock();
    try {
      job->run();
    } catch (...) {
      report_orphan_exception("a CompletionQueue callback", std::current_exception());
    }
    job.reset();
    mu.lock();
    --pending;
    cv.notify_all();
    return true;
  }
  // Wait predicates, called by the condition variable with mu held.
  bool ready_or_done() const TP_REQUIRES(mu) { return !ready.empty() || pending == 0; }
};

void cq_add_pending(CompletionQueueCore& q) noexcept {
  MutexLock lk(q.mu);
  ++q.pending;
}

void cq_deliver(CompletionQueueCore& q, std::unique_ptr<Job> job) {
  MutexLock lk(q.mu);
  if (q.closed) {
    lk.unlock();
    job.reset();  // its result future becomes cancelled
    return;
  }
  q.ready.push_back(std::move(job));
  q.cv.notify_all();
}

}  // namespace detail

CompletionQueue::CompletionQueue() : core_(std::make_shared<detail::CompletionQueueCore>()) {}

CompletionQueue::~CompletionQueue() {
  std::deque<std::unique_ptr<detail::Job>> dropped;  // destroyed after the lock is released
  {
    detail::MutexLock lk(core_->mu);
    core_->closed = true;
    dropped.swap(core_->ready);
  }
}

std::size_t CompletionQueue::poll() {
  detail::MutexLock lk(core_->mu);
  std::size_t n = 0;
  while (core_->run_one()) ++n;
  return n;
}

std::size_t CompletionQueue::run_for(std::chrono::steady_clock::duration d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  detail::CompletionQueueCore& q = *core_;
  detail::MutexLock lk(q.mu);
  std::size_t n = 0;
  for (;;) {
    while (q.run_one()) ++n;
    if (q.pending == 0) return n;
    if (!q.cv.wait_until(lk.native(), deadline, [&]() TP_REQUIRES(q.mu) { return q.ready_or_done(); })) return n;
  }
}

void CompletionQueue::wait_all() {
  detail::CompletionQueueCore& q = *core_;
  detail::MutexLock lk(q.mu);
  for (;;) {
    while (q.run_one()) {
    }
    if (q.pending == 0) return;
    q.cv.wait(lk.native(), [&]() TP_REQUIRES(q.mu) { return q.ready_or_done(); });
  }
}

std::size_t CompletionQueue::pending() const {
  detail::MutexLock lk(core_->mu);
  return core_->pending;
}

}  // namespace taskpool
