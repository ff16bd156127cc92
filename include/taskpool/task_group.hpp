// taskpool/task_group.hpp — TaskGroup<Key, T>: tasks whose results are fetched by a tag.
//
// The origin notes' "results fetched by a tag": each task is submitted under a key; get(key)
// waits for that one task, results() for all of them.
//
// Thread-safety: all members may be called concurrently from any thread.
// Blocking: submit() blocks only as ThreadPool::submit does (it holds the group's lock meanwhile); get(), results() and wait() block
// until the tasks concerned finish (helping, when called on a worker of the pool); cancel() and
// size() never block.
// Errors: submit() throws std::invalid_argument for a key already used in this group; get()
// throws std::out_of_range for an unknown key, and rethrows the task's exception (or Cancelled).
#pragma once

#include <concepts>
#include <functional>
#include <map>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskpool/detail/thread_annotations.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool {

template <class Key, class T>
class TaskGroup {
  static_assert(!std::is_void_v<T>, "TaskGroup<Key, void> has no results to map; use when_all or wait_idle");

 public:
  explicit TaskGroup(ThreadPool& pool) : pool_(pool) {}
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  // Runs f(args...) on the pool under `key` (the calling convention of ThreadPool::submit,
  // with the key before the callable). Its result converts to T.
  template <class F, class... Args>
    requires detail::Task<F, Args...> && std::is_convertible_v<detail::task_result_t<F, Args...>, T>
  void submit(Key key, F&& f, Args&&... args) {
    submit(kDefaultPriority, std::move(key), std::forward<F>(f), std::forward<Args>(args)...);
  }
  template <class F, class... Args>
    requires detail::Task<F, Args...> && std::is_convertible_v<detail::task_result_t<F, Args...>, T>
  void submit(Priority p, Key key, F&& f, Args&&... args) {
    detail::MutexLock lk(mu_);
    if (futures_.count(key) != 0) throw std::invalid_argument("taskpool::TaskGroup: duplicate key");
    Future<T> fut;
    if constexpr (std::is_same_v<detail::task_result_t<F, Args...>, T>) {
      fut = pool_.submit(p, std::forward<F>(f), std::forward<Args>(args)...);
    } else {
      fut = pool_.submit(p, ResultAs<std::decay_t<F>>{std::forward<F>(f)}, std::forward<Args>(args)...);
    }
    futures_.emplace(std::move(key), std::move(fut));
  }

  T get(const Key& key) { return future(key).get(); }

  // Waits for every task; returns key -> value. Rethrows the first failure in key order.
  std::map<Key, T> results() {
    std::map<Key, T> out;
    for (auto& [k, f] : snapshot()) out.emplace(k, f.get());
    return out;
  }

  // Waits for every task submitted so far; never throws task exceptions.
  void wait() {
    for (auto& kv : snapshot()) kv.second.wait();
  }

  // Cancels every task that has not started; returns how many were cancelled.
  std::size_t cancel() {
    std::size_t n = 0;
    for (auto& kv : snapshot()) n += kv.second.cancel() ? 1 : 0;
    return n;
  }

  std::size_t size() const {
    detail::MutexLock lk(mu_);
    return futures_.size();
  }

  Future<T> future(const Key& key) const {
    detail::MutexLock lk(mu_);
    auto it = futures_.find(key);
    if (it == futures_.end()) throw std::out_of_range("taskpool::TaskGroup: unknown key");
    return it->second;
  }

 private:
  // Calls G and converts its result to T (a task returning something convertible to T).
  template <class G>
  struct ResultAs {
    G g;
    template <class... A>
      requires std::invocable<G&, A...>
    T operator()(A&&... a) {
      return std::invoke(g, std::forward<A>(a)...);
    }
  };

  std::vector<std::pair<Key, Future<T>>> snapshot() const {
    detail::MutexLock lk(mu_);
    return {futures_.begin(), futures_.end()};
  }

  ThreadPool& pool_;
  mutable detail::Mutex mu_;
  std::map<Key, Future<T>> futures_ TP_GUARDED_BY(mu_);
};

}  // namespace taskpool
