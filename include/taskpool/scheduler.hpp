// taskpool/scheduler.hpp — timed work on a ThreadPool: delayed, periodic and debounced tasks.
//
//   taskpool::Scheduler sched(pool);
//   auto reminder = sched.schedule_at(when, [] { send("stand-up"); });          // wall clock
//   auto t = sched.schedule_after(5s, f, args...);                               // Scheduled<R>
//   auto cleanup = sched.schedule_every(1min, purge, {.mode = taskpool::Every::fixed_rate});
//   sched.debounce("img-search:" + user, 60s, [=] { leave_image_mode(user); });  // sliding deadline
//   sched.debounce("drop:" + user, 1min, [=] { drop(user); }, {.max_wait = 10min});  // ... at most 10 min
//   auto standup = sched.schedule_cron("0 9 * * MON-FRI", "Europe/Berlin", [] { send("stand-up"); });
//
// One-shot forms take `when, f, args...` (the pool's convention for a single task: f(args...),
// or f(stop_token, args...)); the pool priority a timed task runs at is an option
// (SchedulerOptions::priority, Every::priority), not an argument.
//
// One timer thread keeps every pending timer in a binary heap (O(log n) insert, cancel and
// reschedule; about 200 bytes per timer) and sleeps until the earliest is due. A due timer's task
// is handed to the pool and runs there, never on the timer thread, so a slow task delays nothing
// else. Timed tasks bypass the pool's queue_capacity when they fall due (they were accepted when
// scheduled), and never run on the timer thread even under WhenFull::caller_runs. With the real
// clock the pool's workers also launch due timers between tasks, so timers stay on time when
// every core is busy with the pool and the timer thread would wait for a time slice.
//
// Time: delays and periods are measured on the clock's monotonic time line. schedule_at with a
// system_clock time point follows the wall clock: the timer thread compares wall and monotonic
// time whenever it wakes, and at least once a second while such timers are pending, and re-plans
// them when the wall clock was stepped; so a wall-clock change takes effect within about a second
// (at once with a ManualClock).
//
// Periodic tasks (schedule_every): runs of one series never overlap.
//   Every::fixed_rate  — planned times lie on a grid first_run + k * interval. A late run does not
//                        move the grid: a run that starts late stands for every grid point up to
//                        its start, and grid points that pass while it runs are coalesced into one
//                        run started when it ends; then the series continues on the grid (never a
//                        burst of catch-up runs).
//   Every::fixed_delay — the next run is planned `interval` after the previous run finishes.
//   schedule_cron       — runs at the instants of a CronSchedule (taskpool/cron.hpp: a zone's wall
//                        time, daylight-saving gaps and folds as documented there). The instants
//                        are wall-clock times, re-planned after wall-clock steps like schedule_at.
//                        A run that starts late stands for every instant up to its start; instants
//                        that pass while it runs are coalesced into one run started when it ends;
//                        then the series continues with the next instant (never a burst). With no
//                        instant left before kCronEnd the series ends and its future completes.
//   A run that throws ends the series and its future carries the exception (stop_on_error,
//   the default); with stop_on_error = false the exception goes to SchedulerOptions::on_error.
//
// Thread-safety: every member of Scheduler and Scheduled may be called from any thread,
// concurrently, including from timed tasks. Scheduled handles stay valid after the Scheduler is
// gone (their operations then return false / nullopt).
// Blocking: scheduling, cancel, reschedule, extend, next_run and active never block on tasks (they
// take the scheduler's mutex briefly). close() and the destructor join the timer thread; they do
// not wait for tasks already handed to the pool.
// Shutdown: close() — or the pool's shutdown — cancels every pending timer (their futures become
// cancelled). cancel() racing the timer firing runs the task at most once and returns true only
// if it will not run.
// The timer node and the engine's entry points are in taskpool/detail/timer_node.hpp.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "taskpool/clock.hpp"
#include "taskpool/cron.hpp"
#include "taskpool/detail/timer_node.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool {

struct Every {
  enum Mode { fixed_rate, fixed_delay };
  Mode mode = fixed_rate;
  // First planned run on the clock's monotonic time line; default: now + interval.
  std::optional<std::chrono::steady_clock::time_point> first_run;
  bool stop_on_error = true;
  Priority priority = kDefaultPriority;
};

// A cron series (Scheduler::schedule_cron).
struct CronOptions {
  bool stop_on_error = true;  // as Every::stop_on_error
  Priority priority = kDefaultPriority;
};

// Scheduler::debounce. A window opens at the first arm of a key and closes when its task starts:
// each re-arm within the window moves the deadline to now + delay, but never past the window's
// first arm + max_wait (nullopt: no limit). An arm after the task started opens a new window.
struct DebounceOptions {
  std::optional<std::chrono::steady_clock::duration> max_wait;
};

struct SchedulerOptions {
  Clock* clock = nullptr;  // nullptr = real_clock(); must outlive the Scheduler
  // Pool priority of one-shot and debounced tasks when they fall due (series: Every::priority).
  // A higher value lets due timers overtake ordinary queued work.
  Priority priority = kDefaultPriority;
  // Exceptions of periodic runs that do not end their series (stop_on_error = false).
  std::function<void(std::exception_ptr)> on_error;
};

// A handle to one timed task or periodic series. Copies refer to the same timer.
template <class R>
class Scheduled {
 public:
  Scheduled() = default;
  // The task's outcome; for a series: cancelled when cancelled or closed, the exception when a
  // run ended it.
  Future<R> future() const { return future_; }
  // True if the task will not run (it had not started); for a series, true if the series was
  // still active — no further run starts (a run in progress finishes).
  bool cancel() { return core_ && detail::scheduler_cancel(*core_, node_); }
  // Moves the next run to `t` (a new deadline, earlier or later). False once the timer has fired
  // (one-shot), ended, or while a periodic run is in progress.
  bool reschedule(std::chrono::steady_clock::time_point t) { return core_ && detail::scheduler_reschedule(*core_, node_, t); }
  bool reschedule(std::chrono::system_clock::time_point t) {
    return core_ && detail::scheduler_reschedule_wall(*core_, node_, t);
  }
  // Pushes the next run back by `d` (a sliding deadline); same conditions as reschedule().
  bool extend(std::chrono::steady_clock::duration d) { return core_ && detail::scheduler_extend(*core_, node_, d); }
  // When the next run is planned (monotonic time line), or nullopt if none is pending.
  std::optional<std::chrono::steady_clock::time_point> next_run() const {
    return core_ ? detail::scheduler_next_run(*core_, node_) : std::nullopt;
  }
  // True until the task finished or was cancelled (a series: until it ended).
  bool active() const { return core_ && detail::scheduler_active(*core_, node_); }

 private:
  friend class Scheduler;
  Scheduled(std::shared_ptr<detail::SchedulerCore> core, detail::TimerNode* node, Future<R> f)
      : core_(std::move(core)), node_(node), future_(std::move(f)) {}
  std::shared_ptr<detail::SchedulerCore> core_;
  detail::TimerNode* node_ = nullptr;  // kept alive by future_'s reference
  Future<R> future_;
};

class Scheduler {
 public:
  using steady_time = std::chrono::steady_clock::time_point;
  using system_time = std::chrono::system_clock::time_point;

  explicit Scheduler(ThreadPool& pool, SchedulerOptions opts = {})
      : priority_(opts.priority.value), core_(detail::make_scheduler_core(pool, std::move(opts))) {
    if (priority_ < 0 || priority_ >= kPriorityLevels) throw std::invalid_argument("taskpool::Scheduler: bad priority");
  }
  ~Scheduler() { close(); }
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs f(args...) on the pool after `delay` (monotonic time).
  template <class Rep, class Period, class F, class... Args>
    requires detail::Task<F, Args...>
  auto schedule_after(std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
    return schedule_at(clock().now() + std::chrono::ceil<std::chrono::steady_clock::duration>(delay),
                       std::forward<F>(f), std::forward<Args>(args)...);
  }
  // Runs f(args...) at monotonic time `t`.
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  auto schedule_at(steady_time t, F&& f, Args&&... args) {
    auto [node, fut] = make(std::forward<F>(f), std::forward<Args>(args)...);
    node->due = t;
    return add(node, std::move(fut), false);
  }
  // Runs f(args...) when the wall clock reads `t` (follows wall-clock changes).
  template <class F, class... Args>
    requires detail::Task<F, Args...>
  auto schedule_at(system_time t, F&& f, Args&&... args) {
    auto [node, fut] = make(std::forward<F>(f), std::forward<Args>(args)...);
    node->wall = true;
    node->wall_due = t;
    node->due = clock().now() + std::chrono::ceil<std::chrono::steady_clock::duration>(t - clock().system_now());
    return add(node, std::move(fut), false);
  }
  // Runs f() every `interval` (see the header comment for the two modes).
  template <class Rep, class Period, class F>
    requires detail::Task<F>
  Scheduled<void> schedule_every(std::chrono::duration<Rep, Period> interval, F&& f, Every every = {}) {
    auto iv = std::chrono::ceil<std::chrono::steady_clock::duration>(interval);
    if (iv <= std::chrono::steady_clock::duration::zero())
      throw std::invalid_argument("taskpool::Scheduler::schedule_every: interval must be positive");
    using Fn = detail::Callable<std::decay_t<F>>;
    auto* node = new detail::TimerTask<void, Fn>(Fn(std::forward<F>(f)));
    Future<void> fut = Future<void>::from_state(node);
    node->periodic = true;
    node->fixed_delay = every.mode == Every::fixed_delay;
    node->interval = iv;
    node->stop_on_error = every.stop_on_error;
    node->priority = every.priority.value;
    node->due = node->slot = every.first_run.value_or(clock().now() + iv);
    return add(node, std::move(fut), false);
  }
  // Runs f() at each instant of `cron` (see the header comment); CronSchedule::parse errors
  // (std::invalid_argument) come from the second form.
  template <class F>
    requires detail::Task<F>
  Scheduled<void> schedule_cron(CronSchedule cron, F&& f, CronOptions opts = {}) {
    using Fn = detail::Callable<std::decay_t<F>>;
    auto* node = new detail::TimerTask<void, Fn>(Fn(std::forward<F>(f)));
    Future<void> fut = Future<void>::from_state(node);
    node->periodic = true;
    node->stop_on_error = opts.stop_on_error;
    node->priority = opts.priority.value;
    node->cron = std::make_shared<const CronSchedule>(std::move(cron));
    detail::TimerNode* tn = node;
    node->release();  // the handle's future holds the only reference; the heap takes its own
    detail::scheduler_insert_cron(*core_, tn);
    return Scheduled<void>(core_, tn, std::move(fut));
  }
  template <class F>
    requires detail::Task<F>
  Scheduled<void> schedule_cron(std::string_view expr, std::string_view zone, F&& f, CronOptions opts = {}) {
    return schedule_cron(CronSchedule::parse(expr, zone), std::forward<F>(f), opts);
  }
  // One pending task per key: schedules f(args...) after `delay`, replacing (cancelling) the
  // pending task of the same key if it has not started. Re-arming pushes the deadline to now + delay.
  template <class Rep, class Period, class F, class... Args>
    requires detail::Task<F, Args...>
  auto debounce(std::string key, std::chrono::duration<Rep, Period> delay, F&& f, Args&&... args) {
    return debounce_with(std::move(key), delay, {}, std::forward<F>(f), std::forward<Args>(args)...);
  }
  // The same with a limit on how far re-arms push the deadline: {.max_wait = 10min}.
  template <class Rep, class Period, class F>
    requires detail::Task<F>
  auto debounce(std::string key, std::chrono::duration<Rep, Period> delay, F&& f, DebounceOptions opts) {
    return debounce_with(std::move(key), delay, opts, std::forward<F>(f));
  }

  // Cancels every pending timer and stops the timer thread. Idempotent.
  void close() { detail::scheduler_close(*core_); }
  // Timers waiting in the heap.
  std::size_t pending() const { return detail::scheduler_pending(*core_); }
  const Clock& clock() const { return detail::scheduler_clock(*core_); }

 private:
  template <class F, class... Args>
  auto make(F&& f, Args&&... args) {
    using Fn = detail::Callable<std::decay_t<F>, std::decay_t<Args>...>;
    using R = detail::task_result_t<F, Args...>;
    auto* node = new detail::TimerTask<R, Fn>(Fn(std::forward<F>(f), std::forward<Args>(args)...));
    node->priority = priority_;
    return std::pair<detail::TimerTask<R, Fn>*, Future<R>>(node, Future<R>::from_state(node));
  }
  template <class Rep, class Period, class F, class... Args>
  auto debounce_with(std::string key, std::chrono::duration<Rep, Period> delay, DebounceOptions opts, F&& f,
                     Args&&... args) {
    if (opts.max_wait && *opts.max_wait < std::chrono::steady_clock::duration::zero())
      throw std::invalid_argument("taskpool::Scheduler::debounce: max_wait must not be negative");
    auto [node, fut] = make(std::forward<F>(f), std::forward<Args>(args)...);
    node->debounce_start = clock().now();
    node->due = node->debounce_start + std::chrono::ceil<std::chrono::steady_clock::duration>(delay);
    node->max_wait = opts.max_wait;
    node->keyed = true;
    node->key = std::move(key);
    return add(node, std::move(fut), true);
  }
  template <class Node, class R>
  Scheduled<R> add(Node* node, Future<R> fut, bool keyed) {
    detail::TimerNode* tn = node;
    node->release();  // the handle's future now holds the only reference; insert takes its own
    if (keyed) {
      detail::scheduler_insert_debounced(*core_, tn);
    } else {
      detail::scheduler_insert(*core_, tn);
    }
    return Scheduled<R>(core_, tn, std::move(fut));
  }

  int priority_;
  std::shared_ptr<detail::SchedulerCore> core_;
};

}  // namespace taskpool
