// src/pool/completion_queue.cpp — see taskpool/completion_queue.hpp.
#include <condition_variable>
#include <deque>
#include <mutex>

#include "taskpool/completion_queue.hpp"
#include "taskpool/future.hpp"

namespace taskpool {
namespace detail {

class CompletionQueueCore {
 public:
  mutable std::mutex mu;
  std::condition_variable cv;              // signalled on delivery and when pending drops
  std::deque<std::unique_ptr<Job>> ready;  // guarded by mu
  std::size_t pending = 0;                 // guarded by mu: registered and not yet run
  bool closed = false;                     // guarded by mu: the CompletionQueue was destroyed

  // Runs one ready job if there is one; `lk` is held on entry and exit.
  bool run_one(std::unique_lock<std::mutex>& lk) {
    if (ready.empty()) return false;
    std::unique_ptr<Job> job = std::move(ready.front());
    ready.pop_front();
    lk.unlock();
    try {
      job->run();
    } catch (...) {
      report_orphan_exception("a CompletionQueue callback", std::current_exception());
    }
    job.reset();
    lk.lock();
    --pending;
    cv.notify_all();
    return true;
  }
};

void cq_add_pending(CompletionQueueCore& q) noexcept {
  std::lock_guard lk(q.mu);
  ++q.pending;
}

void cq_deliver(CompletionQueueCore& q, std::unique_ptr<Job> job) {
  std::unique_lock lk(q.mu);
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
  std::deque<std::unique_ptr<detail::Job>> dropped;
  {
    std::lock_guard lk(core_->mu);
    core_->closed = true;
    dropped.swap(core_->ready);
  }
}

std::size_t CompletionQueue::poll() {
  std::unique_lock lk(core_->mu);
  std::size_t n = 0;
  while (core_->run_one(lk)) ++n;
  return n;
}

std::size_t CompletionQueue::run_for(std::chrono::steady_clock::duration d) {
  auto deadline = std::chrono::steady_clock::now() + d;
  std::unique_lock lk(core_->mu);
  std::size_t n = 0;
  for (;;) {
    while (core_->run_one(lk)) ++n;
    if (core_->pending == 0) return n;
    if (!core_->cv.wait_until(lk, deadline, [&] { return !core_->ready.empty() || core_->pending == 0; })) return n;
  }
}

void CompletionQueue::wait_all() {
  std::unique_lock lk(core_->mu);
  for (;;) {
    while (core_->run_one(lk)) {
    }
    if (core_->pending == 0) return;
    core_->cv.wait(lk, [&] { return !core_->ready.empty() || core_->pending == 0; });
  }
}

std::size_t CompletionQueue::pending() const {
  std::lock_guard lk(core_->mu);
  return core_->pending;
}

}  // namespace taskpool
