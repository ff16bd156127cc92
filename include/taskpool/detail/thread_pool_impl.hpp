// taskpool/detail/thread_pool_impl.hpp — the bodies of ThreadPool's submission templates
// (declared, with their contract, in taskpool/thread_pool.hpp). Included at the end of
// thread_pool.hpp; not part of the API.
//
// Design note. A submission builds its node(s) on the calling thread (task_node.hpp: one
// allocation per task, from the thread's node cache), stamps the priority level into the node's
// link word, and hands ownership to the engine with one out-of-line call (enqueue or
// enqueue_batch, src/pool/thread_pool.cpp), which queues, runs inline or discards it and reports
// which. Everything before that call is inline at the call site, so a post() costs the callable's
// construction, a few stores and one call. The priority-less forms forward to the Priority forms
// with kDefaultPriority (inlined away). Batches build every node first and discard them all if any
// construction throws, so a batch is queued whole or not at all.
// parallel_for: chunk indices are claimed with one relaxed fetch_add each (the chunks are
// independent; the body's own effects are ordered by the helpers' futures, whose completion the
// caller waits for before returning). The first failure is recorded by the thread that wins an
// acq_rel exchange on `failed`, which then pushes `next` past the end so no new chunk starts.
//
// Thread-safety / blocking: as documented in thread_pool.hpp.
#pragma once

#include <algorithm>
#include <atomic>
#include <exception>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "taskpool/thread_pool.hpp"

namespace taskpool {

inline int ThreadPool::check_priority(Priority p) {
  if (p.value < 0 || p.value >= kPriorityLevels)
    throw std::invalid_argument("taskpool: priority " + std::to_string(p.value) + " is outside [0, " +
                                std::to_string(kPriorityLevels - 1) + "]");
  return p.value;
}

template <class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::submit(F&& f, Args&&... args) -> result_t<F, Args...> {
  return submit(kDefaultPriority, std::forward<F>(f), std::forward<Args>(args)...);
}
template <class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::submit(Priority p, F&& f, Args&&... args) -> result_t<F, Args...> {
  int level = check_priority(p);
  auto [node, fut] = detail::make_future_task(std::forward<F>(f), std::forward<Args>(args)...);
  node->set_level(level);
  if (enqueue(node, detail::Admission::policy, {}) == detail::EnqueueStatus::full) throw QueueFull();
  return std::move(fut);
}

template <class F, class... Args> requires detail::Task<F, Args...>
inline void ThreadPool::post(F&& f, Args&&... args) {
  post(kDefaultPriority, std::forward<F>(f), std::forward<Args>(args)...);
}
template <class F, class... Args> requires detail::Task<F, Args...>
inline void ThreadPool::post(Priority p, F&& f, Args&&... args) {
  int level = check_priority(p);
  detail::TaskNode* node = detail::make_post_task(std::forward<F>(f), std::forward<Args>(args)...);
  node->set_level(level);
  if (enqueue(node, detail::Admission::policy, {}) == detail::EnqueueStatus::full) throw QueueFull();
}

template <class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::try_submit(F&& f, Args&&... args) -> std::optional<result_t<F, Args...>> {
  return submit_with(detail::Admission::no_wait, {}, kDefaultPriority, std::forward<F>(f), std::forward<Args>(args)...);
}
template <class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::try_submit(Priority p, F&& f, Args&&... args) -> std::optional<result_t<F, Args...>> {
  return submit_with(detail::Admission::no_wait, {}, p, std::forward<F>(f), std::forward<Args>(args)...);
}

template <class Rep, class Period, class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::submit_for(std::chrono::duration<Rep, Period> d, F&& f, Args&&... args)
    -> std::optional<result_t<F, Args...>> {
  return submit_for(kDefaultPriority, d, std::forward<F>(f), std::forward<Args>(args)...);
}
template <class Rep, class Period, class F, class... Args> requires detail::Task<F, Args...>
inline auto ThreadPool::submit_for(Priority p, std::chrono::duration<Rep, Period> d, F&& f, Args&&... args)
    -> std::optional<result_t<F, Args...>> {
  return submit_with(detail::Admission::until_deadline, clock::now() + std::chrono::ceil<clock::duration>(d), p,
                     std::forward<F>(f), std::forward<Args>(args)...);
}

template <class F, class... Args>
inline auto ThreadPool::submit_with(detail::Admission a, clock::time_point deadline, Priority p, F&& f, Args&&... args)
    -> std::optional<result_t<F, Args...>> {
  int level = check_priority(p);
  auto [node, fut] = detail::make_future_task(std::forward<F>(f), std::forward<Args>(args)...);
  node->set_level(level);
  if (enqueue(node, a, deadline) == detail::EnqueueStatus::full) return std::nullopt;
  return std::move(fut);
}

template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
inline auto ThreadPool::submit_batch(Range&& callables) -> std::vector<result_t<element_t<Range>>> {
  return submit_batch(kDefaultPriority, std::forward<Range>(callables));
}
template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
inline auto ThreadPool::submit_batch(Priority p, Range&& callables) -> std::vector<result_t<element_t<Range>>> {
  int level = check_priority(p);
  using R = detail::task_result_t<element_t<Range>>;
  std::vector<detail::TaskNode*> nodes;
  std::vector<Future<R>> futures;
  if constexpr (std::ranges::sized_range<Range>) {
    nodes.reserve(std::ranges::size(callables));
    futures.reserve(std::ranges::size(callables));
  }
  try {
    for (auto&& c : callables) {
      auto [node, fut] = detail::make_future_task(std::forward<decltype(c)>(c));
      node->set_level(level);
      nodes.push_back(node);
      futures.push_back(std::move(fut));
    }
  } catch (...) {
    for (auto* n : nodes) n->discard(nullptr);
    throw;
  }
  if (enqueue_batch(nodes.data(), nodes.size(), detail::Admission::policy, {}) == detail::EnqueueStatus::full)
    throw QueueFull();
  return futures;
}

template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
inline void ThreadPool::post_batch(Range&& callables) {
  post_batch(kDefaultPriority, std::forward<Range>(callables));
}
template <std::ranges::input_range Range> requires detail::Task<std::ranges::range_reference_t<Range>>
inline void ThreadPool::post_batch(Priority p, Range&& callables) {
  int level = check_priority(p);
  std::vector<detail::TaskNode*> nodes;
  if constexpr (std::ranges::sized_range<Range>) nodes.reserve(std::ranges::size(callables));
  try {
    for (auto&& c : callables) {
      nodes.push_back(detail::make_post_task(std::forward<decltype(c)>(c)));
      nodes.back()->set_level(level);
    }
  } catch (...) {
    for (auto* n : nodes) n->discard(nullptr);
    throw;
  }
  if (enqueue_batch(nodes.data(), nodes.size(), detail::Admission::policy, {}) == detail::EnqueueStatus::full)
    throw QueueFull();
}

template <std::integral Index, class F> requires std::invocable<F&, Index, Index>
inline void ThreadPool::parallel_for(Index first, Index last, Index grain, F&& body) {
  parallel_for(kDefaultPriority, first, last, grain, std::forward<F>(body));
}
template <std::integral Index, class F> requires std::invocable<F&, Index, Index>
inline void ThreadPool::parallel_for(Priority p, Index first, Index last, Index grain, F&& body) {
  if (grain <= 0) throw std::invalid_argument("taskpool: parallel_for needs a positive grain");
  check_priority(p);
  if (closed() || broken()) throw_closed();
  if (last <= first) return;
  using U = std::make_unsigned_t<Index>;
  const U span = static_cast<U>(last - first), step = static_cast<U>(grain);
  const std::size_t chunks = static_cast<std::size_t>(span / step + (span % step != 0 ? 1 : 0));
  std::atomic<std::size_t> next{0};  // the next unclaimed chunk; >= chunks once all are claimed
  std::atomic<bool> failed{false};
  std::exception_ptr error;  // written by the one thread that set `failed`
  auto work = [&]() noexcept {
    for (std::size_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      const U off = static_cast<U>(c) * step;
      const Index b = static_cast<Index>(first + static_cast<Index>(off));
      const Index e = span - off > step ? static_cast<Index>(b + grain) : last;
      try {
        body(b, e);
      } catch (...) {
        if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
        next.store(chunks, std::memory_order_relaxed);  // skip what nobody has claimed yet
      }
    }
  };
  std::vector<Future<void>> helpers;
  const std::size_t n = std::min(chunks, max_threads_now()) - 1;  // the caller is one runner
  helpers.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      auto f = try_submit(p, work);
      if (!f) break;
      helpers.push_back(std::move(*f));
    }
  } catch (...) {
    // A shutdown racing with us, or no memory for a node: the helpers already queued refer to
    // this frame, so we must not unwind past them - the caller runs what they do not.
  }
  work();
  // A helper still queued has nothing left to claim: cancel it instead of waiting for a worker.
  for (auto& h : helpers)
    if (!h.cancel()) h.wait();
  if (error) std::rethrow_exception(error);
}

}  // namespace taskpool
