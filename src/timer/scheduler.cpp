// src/timer/scheduler.cpp — the timer thread behind taskpool::Scheduler. See scheduler.hpp.
//
// Design note. One mutex (mu_) guards the heap, the debounce map and every TimerNode field, so
// each public operation is a short critical section and races between cancel, reschedule, extend,
// debounce and the timer firing are decided by the order in which they take mu_. Whether a
// one-shot task runs is decided by its future's state word: the pool task claims it with
// try_start(), cancel() with try_cancel(); exactly one wins, so a task runs at most once and
// cancel() returns true only if it will never run. References: the heap holds one reference per
// node in it; popping a node moves that reference to the RunTicket handed to the pool; a ticket
// destroyed without running (the pool refused or dropped it) abandons the node (cancels it).
// Firing: the timer thread sleeps until the earliest due time and launches what is due. With
// the real clock the scheduler is also the pool's DueSource: workers check between tasks and
// fire due timers themselves, because on a machine whose cores are all busy with the pool the
// timer thread can wait milliseconds for a time slice. Both pop under mu_, so each due timer
// is launched once, by whichever comes first. Everything this file needs from the pool goes
// through detail::PoolAccess (taskpool/detail/pool_access.hpp); the pool has no friend here.
#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "taskpool/cron.hpp"
#include "taskpool/detail/orphan_exception.hpp"
#include "taskpool/detail/pool_access.hpp"
#include "taskpool/detail/thread_annotations.hpp"
#include "taskpool/scheduler.hpp"
#include "timer/timer_heap.hpp"

namespace taskpool::detail {

class SchedulerCore final : public std::enable_shared_from_this<SchedulerCore>, public DueSource {
 public:
  using steady_time = std::chrono::steady_clock::time_point;
  using system_time = std::chrono::system_clock::time_point;

  SchedulerCore(ThreadPool& pool, SchedulerOptions opts)
      : pool_(pool), clock_(opts.clock ? *opts.clock : real_clock()), on_error_(std::move(opts.on_error)) {
    wall_offset_ = clock_.system_now().time_since_epoch() - clock_.now().time_since_epoch();
  }

  void start() {
    std::weak_ptr<SchedulerCore> weak = weak_from_this();
    clock_sub_ = clock_.subscribe([this] { wake(); });
    pool_hook_ = PoolAccess::add_close_hook(pool_, [weak] {
      if (auto self = weak.lock()) self->close();
    });
    if (workers_fire_) PoolAccess::add_due_source(pool_, this);
    thread_ = std::thread([this] { loop(); });
  }

  void close() {
    std::vector<TimerNode*> nodes;
    {
      MutexLock lk(mu_);
      if (!closed_) {
        closed_ = true;
        wake_ = true;
        nodes = heap_.take_all();
        for (TimerNode* n : nodes) n->finished = true;
        keyed_.clear();
        wall_count_ = 0;
      }
    }
    cv_.notify_all();
    {
      MutexLock jl(join_mu_);
      if (thread_.joinable()) {
        thread_.join();
        clock_.unsubscribe(clock_sub_);
        PoolAccess::remove_close_hook(pool_, pool_hook_);
        if (workers_fire_) PoolAccess::remove_due_source(pool_, this);
      }
    }
    for (TimerNode* n : nodes) {
      n->state().try_cancel();
      n->state().release();
    }
  }

  void insert(TimerNode* n, bool debounced) {
    TimerNode* replaced = nullptr;
    {
      MutexLock lk(mu_);
      if (closed_) throw PoolClosed();
      if (debounced) {
        auto it = keyed_.find(n->key);
        if (it != keyed_.end()) {
          TimerNode* old = it->second;
          old->keyed = false;
          if (heap_.contains(old)) {
            remove_locked(old);
            replaced = old;
            n->debounce_start = old->debounce_start;  // the same window
          }
          it->second = n;
        } else {
          keyed_.emplace(n->key, n);
        }
        if (n->max_wait) n->due = std::min(n->due, n->debounce_start + *n->max_wait);
      }
      n->state().add_ref();  // the heap's reference
      push_locked(n);
    }
    if (replaced) {
      replaced->state().try_cancel();
      replaced->state().release();
    }
  }

  void insert_cron(TimerNode* n) {
    const auto first = n->cron->next(clock_.system_now());
    if (!first) {
      {
        MutexLock lk(mu_);
        n->finished = true;
      }
      n->end_series();  // the handle's future holds the node
      return;
    }
    {
      MutexLock lk(mu_);
      n->wall = true;
      n->wall_due = *first;
      n->due = n->slot = clock_.now() + std::chrono::ceil<std::chrono::steady_clock::duration>(*first - clock_.system_now());
    }
    insert(n, false);
  }

  bool cancel(TimerNode* n) {
    bool in_heap, was_active = true;
    {
      MutexLock lk(mu_);
      in_heap = heap_.contains(n);
      if (in_heap) remove_locked(n);
      unkey_locked(n);
      if (n->periodic) {
        was_active = !n->finished;
        n->finished = true;
      }
    }
    bool r = n->periodic ? (n->state().try_cancel(), was_active) : n->state().try_cancel();
    if (in_heap) n->state().release();
    return r;
  }

  bool reschedule(TimerNode* n, steady_time t, std::optional<std::chrono::system_clock::time_point> wall) {
    MutexLock lk(mu_);
    if (!heap_.contains(n)) return false;
    if (n->wall) --wall_count_;
    n->wall = wall.has_value();
    if (n->wall) {
      ++wall_count_;
      n->wall_due = *wall;
    }
    n->due = t;
    if (n->periodic) n->slot = t;
    heap_.update(n);
    wake_locked();
    return true;
  }

  bool extend(TimerNode* n, std::chrono::steady_clock::duration d) {
    MutexLock lk(mu_);
    if (!heap_.contains(n)) return false;
    n->due += d;
    if (n->wall) n->wall_due += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    if (n->periodic) n->slot += d;
    heap_.update(n);
    wake_locked();
    return true;
  }

  std::optional<steady_time> next_run(TimerNode* n) const {
    MutexLock lk(mu_);
    if (!heap_.contains(n)) return std::nullopt;
    return n->due;
  }

  bool active(TimerNode* n) const {
    MutexLock lk(mu_);
    return n->periodic ? !n->finished : !n->state().is_ready();
  }

  std::size_t pending() const {
    MutexLock lk(mu_);
    return heap_.size();
  }

  const Clock& clock() const noexcept { return clock_; }

  // DueSource: a worker between tasks. Wall-clock re-planning stays with the timer thread.
  steady_time fire_due(steady_time now) noexcept override {
    std::vector<TimerNode*> due;
    steady_time next = steady_time::max();
    try {
      MutexLock lk(mu_);
      if (closed_) return next;
      while (!heap_.empty() && heap_.top()->due <= now) {
        TimerNode* n = heap_.top();
        remove_locked(n);
        due.push_back(n);
      }
      if (!heap_.empty()) next = heap_.top()->due;
    } catch (...) {
      // Out of memory for `due`: what was popped is launched; the timer thread fires the rest.
    }
    for (TimerNode* n : due) launch(n);
    return next;
  }

  // Runs on a pool worker; consumes the reference the ticket carried.
  void run_node(TimerNode* n) {
    if (!n->periodic) {
      n->run_once();
      {
        MutexLock lk(mu_);
        unkey_locked(n);
      }
      n->state().release();
      return;
    }
    system_time planned_wall{};
    {
      MutexLock lk(mu_);
      if (n->finished) {
        n->state().release();
        return;
      }
      n->in_run = true;
      if (n->cron) planned_wall = n->wall_due;
    }
    const steady_time started = clock_.now();
    const system_time wall_started = clock_.system_now();
    std::exception_ptr err = n->run_series_once();
    // A cron series' next instant, found outside the lock: the run stands for every instant up
    // to its start (n->cron is constant after insertion).
    std::optional<system_time> cron_next;
    if (n->cron) {
      try {
        cron_next = n->cron->next(std::max(planned_wall, wall_started));
      } catch (...) {  // the tz database failed us: the series ends (with the error, if it stops on errors)
        if (!err) err = std::current_exception();
      }
    }
    const steady_time t = clock_.now();
    const system_time wall_t = clock_.system_now();
    bool fail_series = false, keep = false, ran_out = false;
    {
      MutexLock lk(mu_);
      n->in_run = false;
      if (err && n->stop_on_error && !n->finished) {
        n->finished = true;
        fail_series = true;
      } else if (!n->finished && n->cron && !cron_next) {
        n->finished = true;
        ran_out = true;
      } else if (!n->finished) {
        if (n->cron) {
          // If instants passed during the run, cron_next is the first of them: due in the past,
          // one coalesced run at once, which stands for all of them when it starts.
          n->wall = true;
          n->wall_due = *cron_next;
          n->due = n->slot = t + std::chrono::ceil<std::chrono::steady_clock::duration>(*cron_next - wall_t);
        } else {
          plan_next_locked(n, started, t);
        }
        push_locked(n);  // the ticket's reference becomes the heap's
        keep = true;
      }
    }
    if (ran_out) n->end_series();
    if (fail_series) {
      if (n->state().try_start()) {
        n->state().error = err;
        n->state().finish();
      }
    } else if (err) {
      report(err);
    }
    if (!keep) n->state().release();
  }

  // A ticket that never ran: the pool refused or dropped it.
  void abandon(TimerNode* n) {
    {
      MutexLock lk(mu_);
      unkey_locked(n);
      n->finished = true;
    }
    n->state().try_cancel();
    n->state().release();
  }

 private:
  // Handed to the pool for one due timer. Destroyed without running => abandon.
  struct RunTicket {
    RunTicket(std::shared_ptr<SchedulerCore> c, TimerNode* n) : core(std::move(c)), node(n) {}
    RunTicket(RunTicket&& o) noexcept : core(std::move(o.core)), node(std::exchange(o.node, nullptr)) {}
    RunTicket& operator=(RunTicket&&) = delete;
    ~RunTicket() {
      if (node) core->abandon(node);
    }
    void operator()() { core->run_node(std::exchange(node, nullptr)); }
    std::shared_ptr<SchedulerCore> core;
    TimerNode* node;
  };

  void launch(TimerNode* n) noexcept {
    TaskNode* task;
    try {
      task = make_post_task(RunTicket(shared_from_this(), n));
    } catch (...) {
      return;  // out of memory: the ticket's destructor abandoned the node
    }
    task->set_level(n->priority);
    try {
      PoolAccess::enqueue_overflow(pool_, task);
    } catch (...) {
      // The pool discarded the ticket, which abandoned the node (its future is cancelled).
    }
  }

  // fixed_rate: a run that started late covers every grid point up to its start; grid points
  // that pass while it runs are coalesced into one run at its end.
  void plan_next_locked(TimerNode* n, steady_time started_at, steady_time finished_at) TP_REQUIRES(mu_) {
    if (n->fixed_delay) {
      n->due = finished_at + n->interval;
      return;
    }
    if (started_at > n->slot) n->slot += ((started_at - n->slot) / n->interval) * n->interval;
    const steady_time next = n->slot + n->interval;
    if (next > finished_at) {
      n->slot = n->due = next;
    } else {
      // Grid points were missed: one coalesced run now, then back on the grid.
      n->slot += ((finished_at - n->slot) / n->interval) * n->interval;
      n->due = finished_at;
    }
  }

  void push_locked(TimerNode* n) TP_REQUIRES(mu_) {
    n->seq = next_seq_++;
    if (n->wall) ++wall_count_;
    heap_.push(n);
    if (heap_.top() == n) wake_locked();
  }
  void remove_locked(TimerNode* n) TP_REQUIRES(mu_) {
    if (n->wall) --wall_count_;
    heap_.remove(n);
  }
  void unkey_locked(TimerNode* n) TP_REQUIRES(mu_) {
    if (!n->keyed) return;
    auto it = keyed_.find(n->key);
    if (it != keyed_.end() && it->second == n) keyed_.erase(it);
    n->keyed = false;
  }
  // Called whenever the earliest timer may have moved.
  void wake_locked() TP_REQUIRES(mu_) {
    wake_ = true;
    cv_.notify_one();
    if (workers_fire_ && !heap_.empty()) PoolAccess::note_due(pool_, heap_.top()->due);
  }
  void wake() {
    MutexLock lk(mu_);
    wake_locked();
  }

  // Re-plans wall-clock timers when the wall clock moved relative to monotonic time.
  void replan_wall_locked(steady_time now) TP_REQUIRES(mu_) {
    auto offset = clock_.system_now().time_since_epoch() - now.time_since_epoch();
    auto drift = offset - wall_offset_;
    if (drift < std::chrono::milliseconds(1) && drift > -std::chrono::milliseconds(1)) return;
    wall_offset_ = offset;
    const auto sys_now = clock_.system_now();
    heap_.for_each([&](TimerNode* n) {
      if (n->wall) n->due = now + std::chrono::ceil<std::chrono::steady_clock::duration>(n->wall_due - sys_now);
    });
    heap_.rebuild();
  }

  void loop() {
    std::vector<TimerNode*> due;
    MutexLock lk(mu_);
    while (!closed_) {
      const steady_time now = clock_.now();
      if (wall_count_ > 0) replan_wall_locked(now);
      while (!heap_.empty() && heap_.top()->due <= now) {
        TimerNode* n = heap_.top();
        remove_locked(n);
        due.push_back(n);
      }
      if (!due.empty()) {
        lk.unlock();
        for (TimerNode* n : due) launch(n);
        due.clear();
        lk.lock();
        continue;
      }
      wake_ = false;
      auto woken = [&]() TP_REQUIRES(mu_) { return wake_ || closed_; };  // called by the wait with mu_ held
      if (clock_.is_manual() || (heap_.empty() && wall_count_ == 0)) {
        cv_.wait(lk.native(), woken);
      } else {
        steady_time deadline = heap_.empty() ? steady_time::max() : heap_.top()->due;
        if (wall_count_ > 0) deadline = std::min(deadline, now + std::chrono::seconds(1));
        cv_.wait_until(lk.native(), deadline, woken);
      }
    }
  }

  void report(std::exception_ptr e) noexcept {
    if (on_error_) {
      try {
        on_error_(e);
        return;
      } catch (...) {
        e = std::current_exception();
      }
    }
    report_orphan_exception("a periodic task", e);
  }

  ThreadPool& pool_;
  Clock& clock_;
  const bool workers_fire_ = &clock_ == &real_clock();  // workers compare with steady_clock::now()
  const std::function<void(std::exception_ptr)> on_error_;
  // mu_ guards the members below up to join_mu_, and every TimerNode field (not annotated: the
  // nodes are the public handles' state, outside this class).
  mutable Mutex mu_;
  std::condition_variable cv_;
  TimerHeap heap_ TP_GUARDED_BY(mu_);
  std::unordered_map<std::string, TimerNode*> keyed_ TP_GUARDED_BY(mu_);  // debounce key -> its pending node
  std::uint64_t next_seq_ TP_GUARDED_BY(mu_) = 0;
  bool closed_ TP_GUARDED_BY(mu_) = false;
  bool wake_ TP_GUARDED_BY(mu_) = false;
  std::size_t wall_count_ TP_GUARDED_BY(mu_) = 0;  // wall-clock timers in heap_
  std::chrono::system_clock::duration wall_offset_ TP_GUARDED_BY(mu_){};
  Mutex join_mu_;  // serializes joining thread_ and the unsubscriptions
  std::thread thread_;
  std::size_t clock_sub_ = 0, pool_hook_ = 0;
};

std::shared_ptr<SchedulerCore> make_scheduler_core(ThreadPool& pool, SchedulerOptions opts) {
  auto core = std::make_shared<SchedulerCore>(pool, std::move(opts));
  core->start();
  return core;
}
void scheduler_close(SchedulerCore& core) { core.close(); }
void scheduler_insert(SchedulerCore& core, TimerNode* node) { core.insert(node, false); }
void scheduler_insert_debounced(SchedulerCore& core, TimerNode* node) { core.insert(node, true); }
void scheduler_insert_cron(SchedulerCore& core, TimerNode* node) { core.insert_cron(node); }
bool scheduler_cancel(SchedulerCore& core, TimerNode* node) { return core.cancel(node); }
bool scheduler_reschedule(SchedulerCore& core, TimerNode* node, std::chrono::steady_clock::time_point t) {
  return core.reschedule(node, t, std::nullopt);
}
bool scheduler_reschedule_wall(SchedulerCore& core, TimerNode* node, std::chrono::system_clock::time_point t) {
  const Clock& c = core.clock();
  return core.reschedule(node, c.now() + std::chrono::ceil<std::chrono::steady_clock::duration>(t - c.system_now()), t);
}
bool scheduler_extend(SchedulerCore& core, TimerNode* node, std::chrono::steady_clock::duration d) {
  return core.extend(node, d);
}
std::optional<std::chrono::steady_clock::time_point> scheduler_next_run(SchedulerCore& core, TimerNode* node) {
  return core.next_run(node);
}
bool scheduler_active(SchedulerCore& core, TimerNode* node) { return core.active(node); }
std::size_t scheduler_pending(const SchedulerCore& core) { return core.pending(); }
const Clock& scheduler_clock(const SchedulerCore& core) { return core.clock(); }

}  // namespace taskpool::detail
