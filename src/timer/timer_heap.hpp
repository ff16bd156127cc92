// src/timer/timer_heap.hpp — an indexed binary min-heap of timers.
//
// Design note. Ordered by (due, seq): earliest deadline first, FIFO among equal deadlines. Each
// node records its position (heap_index), so removal and re-keying of an arbitrary node are
// O(log n) without searching. Not synchronized: SchedulerCore::mu_ guards it and every node field.
// Invariant: for every i > 0, !less(heap_[i], heap_[(i-1)/2]) and heap_[i]->heap_index == i;
// nodes not in the heap have heap_index == kNotInHeap.
#pragma once

#include <cstddef>
#include <vector>

#include "taskpool/detail/timer_node.hpp"

namespace taskpool::detail {

class TimerHeap {
 public:
  bool empty() const noexcept { return heap_.empty(); }
  std::size_t size() const noexcept { return heap_.size(); }
  TimerNode* top() const noexcept { return heap_.front(); }
  bool contains(const TimerNode* n) const noexcept { return n->heap_index != TimerNode::kNotInHeap; }

  void push(TimerNode* n) {
    n->heap_index = heap_.size();
    heap_.push_back(n);
    sift_up(n->heap_index);
  }
  TimerNode* pop() {
    TimerNode* n = heap_.front();
    remove(n);
    return n;
  }
  void remove(TimerNode* n) {
    std::size_t i = n->heap_index;
    TimerNode* last = heap_.back();
    heap_.pop_back();
    n->heap_index = TimerNode::kNotInHeap;
    if (last == n) return;
    heap_[i] = last;
    last->heap_index = i;
    fix(i);
  }
  // Restores order after n->due changed.
  void update(TimerNode* n) { fix(n->heap_index); }
  // Restores order after many keys changed (wall-clock step).
  void rebuild() {
    for (std::size_t i = heap_.size() / 2; i-- > 0;) sift_down(i);
  }
  template <class F>
  void for_each(F&& f) const {
    for (TimerNode* n : heap_) f(n);
  }
  std::vector<TimerNode*> take_all() {
    for (TimerNode* n : heap_) n->heap_index = TimerNode::kNotInHeap;
    return std::exchange(heap_, {});
  }

 private:
  static bool less(const TimerNode* a, const TimerNode* b) noexcept {
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
  }
  void fix(std::size_t i) {
    if (i > 0 && less(heap_[i], heap_[(i - 1) / 2])) {
      sift_up(i);
    } else {
      sift_down(i);
    }
  }
  void place(std::size_t i, TimerNode* n) {
    heap_[i] = n;
    n->heap_index = i;
  }
  void sift_up(std::size_t i) {
    TimerNode* n = heap_[i];
    while (i > 0) {
      std::size_t p = (i - 1) / 2;
      if (!less(n, heap_[p])) break;
      place(i, heap_[p]);
      i = p;
    }
    place(i, n);
  }
  void sift_down(std::size_t i) {
    TimerNode* n = heap_[i];
    const std::size_t size = heap_.size();
    for (;;) {
      std::size_t c = 2 * i + 1;
      if (c >= size) break;
      if (c + 1 < size && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], n)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, n);
  }
  std::vector<TimerNode*> heap_;
};

}  // namespace taskpool::detail
