// taskpool/detail/timer_node.hpp — one pending timer (one-shot or a periodic series) and the
// non-template entry points of the timer engine (src/timer/scheduler.cpp). Not part of the API.
//
// Design note. A timer is one allocation: TimerTask is at once the heap entry (TimerNode's
// fields), the Future's shared state and the callable. Every TimerNode field is guarded by the
// owning SchedulerCore's mutex; the node's lifetime is the shared state's reference count (the
// heap, a launched run and each Scheduled handle's Future hold one). Whether a one-shot task runs
// is decided by the state word alone: the run claims it (try_start), cancel() cancels it
// (try_cancel); exactly one wins. A periodic series never claims its state while it runs: its runs
// call the callable directly (run_series_once) and the state completes once, when the series ends
// (cancelled, closed, or failed under stop_on_error).
//
// Thread-safety: the fields only under SchedulerCore's mutex; run_once/run_series_once on the
// pool worker that runs the launched timer. Blocking: the entry points take that mutex briefly;
// scheduler_close joins the timer thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "taskpool/detail/shared_state.hpp"
#include "taskpool/options.hpp"

namespace taskpool {

class Clock;
class CronSchedule;
class ThreadPool;
struct SchedulerOptions;

namespace detail {

class SchedulerCore;  // src/timer/scheduler.cpp

class TimerNode {
 public:
  static constexpr std::size_t kNotInHeap = static_cast<std::size_t>(-1);
  virtual SharedStateBase& state() noexcept = 0;
  // One-shot: claims the state, runs, publishes the outcome (no-op if cancelled).
  virtual void run_once() noexcept = 0;
  // Periodic: one run; returns its exception, if any.
  virtual std::exception_ptr run_series_once() noexcept = 0;
  // Periodic: the series ran out of instants (a cron schedule past its last): the future
  // completes normally. No-op if it was already completed.
  virtual void end_series() noexcept = 0;

  std::chrono::steady_clock::time_point due{};
  std::size_t heap_index = kNotInHeap;
  std::uint64_t seq = 0;  // FIFO among equal deadlines
  int priority = kDefaultPriority.value;
  bool wall = false;  // due follows wall_due through wall-clock steps
  std::chrono::system_clock::time_point wall_due{};
  bool periodic = false;
  bool fixed_delay = false;  // periodic: Every::fixed_delay (else fixed_rate)
  std::chrono::steady_clock::duration interval{};
  std::chrono::steady_clock::time_point slot{};  // fixed_rate: grid point of the next run
  bool stop_on_error = true;
  bool in_run = false;
  bool finished = false;  // periodic: series ended (cancelled, failed or closed)
  bool keyed = false;     // registered in the debounce map under `key`
  std::string key;
  // Debounced: the first arm of the current window, and the window's limit (DebounceOptions).
  std::chrono::steady_clock::time_point debounce_start{};
  std::optional<std::chrono::steady_clock::duration> max_wait;
  // Periodic cron series: its instants are wall-clock times; wall_due is the planned one.
  std::shared_ptr<const CronSchedule> cron;

 protected:
  ~TimerNode() = default;
};

template <class R, class Fn>
class TimerTask final : public SharedState<R>, public TimerNode {
 public:
  explicit TimerTask(Fn&& f) : fn_(std::move(f)) {}
  SharedStateBase& state() noexcept override { return *this; }
  void run_once() noexcept override {
    if (!this->try_start()) return;
    try {
      if constexpr (std::is_void_v<R>) {
        fn_(std::stop_token{});
        this->value.emplace();
      } else {
        this->value.emplace(fn_(std::stop_token{}));
      }
    } catch (...) {
      this->error = std::current_exception();
    }
    this->finish();
  }
  void end_series() noexcept override {
    if constexpr (std::is_void_v<R>) {
      if (!this->try_start()) return;
      this->value.emplace();
      this->finish();
    }
  }
  std::exception_ptr run_series_once() noexcept override {
    try {
      fn_(std::stop_token{});
    } catch (...) {
      return std::current_exception();
    }
    return nullptr;
  }

 private:
  Fn fn_;
};

std::shared_ptr<SchedulerCore> make_scheduler_core(ThreadPool& pool, SchedulerOptions opts);
void scheduler_close(SchedulerCore& core);
// Inserts `node` (takes one reference). Throws PoolClosed after close().
void scheduler_insert(SchedulerCore& core, TimerNode* node);
void scheduler_insert_debounced(SchedulerCore& core, TimerNode* node);
// A cron series: plans its first instant; with none before kCronEnd the series ends at once.
void scheduler_insert_cron(SchedulerCore& core, TimerNode* node);
bool scheduler_cancel(SchedulerCore& core, TimerNode* node);
bool scheduler_reschedule(SchedulerCore& core, TimerNode* node, std::chrono::steady_clock::time_point t);
bool scheduler_reschedule_wall(SchedulerCore& core, TimerNode* node, std::chrono::system_clock::time_point t);
bool scheduler_extend(SchedulerCore& core, TimerNode* node, std::chrono::steady_clock::duration d);
std::optional<std::chrono::steady_clock::time_point> scheduler_next_run(SchedulerCore& core, TimerNode* node);
bool scheduler_active(SchedulerCore& core, TimerNode* node);
std::size_t scheduler_pending(const SchedulerCore& core);
const Clock& scheduler_clock(const SchedulerCore& core);

}  // namespace detail
}  // namespace taskpool
