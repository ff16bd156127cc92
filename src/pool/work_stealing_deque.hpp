// src/pool/work_stealing_deque.hpp — one worker's task deque (Chase–Lev).
//
// Design note. The owner pushes and pops at `bottom`; thieves take from `top` with a CAS. This is
// the algorithm of Chase & Lev (SPAA 2005) in the C11 formulation of Lê, Pop, Cohen and Zappa
// Nardelli (PPoPP 2013), with the paper's fences replaced by seq_cst operations (ThreadSanitizer
// does not model standalone fences; on x86 the cost is the same locked instruction).
// Invariants:
//   - top only grows (CAS by a thief, or by the owner taking the last element); bottom is written
//     only by the owner; the live elements are [top, bottom).
//   - An element is written before the release store of bottom that publishes it; a thief reads
//     bottom with acquire before the element, so it sees a fully written TaskNode. push() is
//     only that release store: ordering the push before the pusher's check for sleeping workers
//     is the wake-up protocol's business (EventCount::notify_one_after_publish).
//   - The owner's pop stores bottom-1 and then loads top, both seq_cst (the StoreLoad the paper
//     gets from a fence): a thief that read the old bottom and the owner cannot both take the
//     last element, because both must win the same CAS on top.
//   - Growing copies [top, bottom) into a new array twice the size; old arrays stay allocated
//     until the deque is destroyed, since a slow thief may still read from them (it then fails its
//     CAS or reads an element that is still valid in both arrays).
//   - Nothing here throws: when growing fails (no memory) push() returns false and leaves the
//     element with the caller, which queues it elsewhere (the shared lists need no allocation);
//     reserve() lets a caller find out before it takes elements it has to place.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "pool/test_hooks.hpp"

namespace taskpool::detail {

class TaskNode;

class WorkStealingDeque {
  struct Array {
    explicit Array(std::int64_t c) : cap(c), mask(c - 1), slots(new std::atomic<TaskNode*>[static_cast<std::size_t>(c)]) {}
    TaskNode* get(std::int64_t i) const noexcept { return slots[i & mask].load(std::memory_order_relaxed); }
    void put(std::int64_t i, TaskNode* t) noexcept { slots[i & mask].store(t, std::memory_order_relaxed); }
    const std::int64_t cap, mask;
    std::unique_ptr<std::atomic<TaskNode*>[]> slots;
  };

 public:
  explicit WorkStealingDeque(std::int64_t capacity = 256) {
    auto a = std::make_unique<Array>(capacity);
    array_.store(a.get(), std::memory_order_relaxed);
    arrays_.push_back(std::move(a));
  }

  // Owner only. False when the deque was full and could not grow: nothing was pushed.
  [[nodiscard]] bool push(TaskNode* t) noexcept {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    std::int64_t top = top_.load(std::memory_order_acquire);
    Array* a = array_.load(std::memory_order_relaxed);
    if (b - top > a->cap - 1) [[unlikely]] {
      a = grow(a, top, b);
      if (a == nullptr) return false;
    }
    a->put(b, t);
    bottom_.store(b + 1, std::memory_order_release);
    return true;
  }

  // Owner only: makes room for `n` more pushes (n <= the capacity), growing now if needed.
  // Returns the room there is, less than n when the deque could not grow. Thieves only add room.
  std::int64_t reserve(std::int64_t n) noexcept {
    std::int64_t b = bottom_.load(std::memory_order_relaxed);
    std::int64_t top = top_.load(std::memory_order_acquire);
    Array* a = array_.load(std::memory_order_relaxed);
    if (a->cap - (b - top) < n) {
      if (Array* g = grow(a, top, b)) a = g;
    }
    return a->cap - (b - top);
  }

  // Owner only. nullptr when empty.
  TaskNode* pop() noexcept {
    std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    Array* a = array_.load(std::memory_order_relaxed);
    bottom_.store(b, std::memory_order_seq_cst);
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    if (t > b) {  // empty
      bottom_.store(b + 1, std::memory_order_relaxed);
      return nullptr;
    }
    TaskNode* x = a->get(b);
    if (t == b) {  // last element: race the thieves for it
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) x = nullptr;
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return x;
  }

  // Any thread. nullptr when empty or when the CAS lost (then `contended` is set: retry may win).
  TaskNode* steal(bool& contended) noexcept {
    contended = false;
    std::int64_t t = top_.load(std::memory_order_seq_cst);
    std::int64_t b = bottom_.load(std::memory_order_seq_cst);
    if (t >= b) return nullptr;
    Array* a = array_.load(std::memory_order_acquire);
    TaskNode* x = a->get(t);
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      contended = true;
      return nullptr;
    }
    return x;
  }

  std::int64_t size_approx() const noexcept {
    std::int64_t n = bottom_.load(std::memory_order_relaxed) - top_.load(std::memory_order_relaxed);
    return n < 0 ? 0 : n;
  }

 private:
  // nullptr when memory ran out (the deque is unchanged).
  [[gnu::noinline, gnu::cold]] Array* grow(Array* old, std::int64_t top, std::int64_t bottom) noexcept {
    if (inject_fault(FaultPoint::deque_grow)) return nullptr;
    try {
      arrays_.reserve(arrays_.size() + 1);  // so the push_back below cannot fail after the copy
      auto a = std::make_unique<Array>(old->cap * 2);
      for (std::int64_t i = top; i < bottom; ++i) a->put(i, old->get(i));
      Array* raw = a.get();
      arrays_.push_back(std::move(a));  // owner only; old arrays live until the deque dies
      array_.store(raw, std::memory_order_release);
      return raw;
    } catch (...) {
      return nullptr;
    }
  }

  alignas(64) std::atomic<std::int64_t> top_{0};
  alignas(64) std::atomic<std::int64_t> bottom_{0};
  std::atomic<Array*> array_{nullptr};
  std::vector<std::unique_ptr<Array>> arrays_;  // owner only
};

}  // namespace taskpool::detail
