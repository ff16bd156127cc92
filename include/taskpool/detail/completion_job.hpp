// taskpool/detail/completion_job.hpp — how a continuation reaches a CompletionQueue. Not part of
// the API; src/pool/completion_queue.cpp has the queue.
//
// Design note. then(cq, f) registers one pending callback at once (cq_add_pending, so wait_all()
// waits for tasks that have not finished yet) and, when the source completes, hands a Job to the
// queue (cq_deliver); the draining thread runs it and counts it off. The queue's core is shared
// (std::shared_ptr) between the CompletionQueue and every registered callback, so a delivery
// after the queue's destruction finds `closed` and destroys the job, whose Promise then cancels
// the result future. Job is a type-erased move-only void() (std::move_only_function is C++23).
//
// Thread-safety: both calls may be made from any thread (they take the queue's mutex).
// Blocking: only for that mutex.
#pragma once

#include <memory>
#include <type_traits>
#include <utility>

namespace taskpool::detail {

struct Job {
  virtual ~Job() = default;
  virtual void run() = 0;
};
template <class F>
struct JobImpl final : Job {
  explicit JobImpl(F&& fn) : f(std::move(fn)) {}
  void run() override { f(); }
  F f;
};
template <class F>
std::unique_ptr<Job> make_job(F&& f) {
  return std::make_unique<JobImpl<std::decay_t<F>>>(std::forward<F>(f));
}

class CompletionQueueCore;  // src/pool/completion_queue.cpp
// Registers one pending callback.
void cq_add_pending(CompletionQueueCore& q) noexcept;
// Queues `job` to run when the owner drains; if the queue was destroyed, `job` is destroyed.
void cq_deliver(CompletionQueueCore& q, std::unique_ptr<Job> job);

}  // namespace taskpool::detail
