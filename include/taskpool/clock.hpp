// taskpool/clock.hpp — the time source of Scheduler, replaceable for tests.
//
// A Clock answers two questions: monotonic time (steady_clock's time line; delays and periods
// are measured on it) and wall-clock time (system_clock; schedule_at with a system_clock time
// point is measured on it). real_clock() reads the OS clocks. ManualClock only moves when told
// to, so tests drive timers deterministically without sleeping.
//
// Thread-safety: every member of both clocks may be called from any thread.
// Blocking: none of the calls blocks, except that ManualClock::advance()/set_system_time() run the
// subscribers (each Scheduler using the clock wakes its timer thread) before returning.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

namespace taskpool {

class Clock {
 public:
  using steady_time = std::chrono::steady_clock::time_point;
  using system_time = std::chrono::system_clock::time_point;
  virtual ~Clock() = default;
  virtual steady_time now() const = 0;
  virtual system_time system_now() const = 0;
  // True for clocks that move only through explicit calls (the scheduler then sleeps until
  // notified instead of until a real deadline).
  virtual bool is_manual() const noexcept { return false; }
  // Calls `on_change` after each change of a manual clock; real clocks never call it.
  // unsubscribe() returns only once no call to that subscriber is running.
  virtual std::size_t subscribe(std::function<void()> on_change) {
    (void)on_change;
    return 0;
  }
  virtual void unsubscribe(std::size_t id) { (void)id; }
};

// The OS clocks (std::chrono::steady_clock and system_clock).
Clock& real_clock() noexcept;

// A clock for tests: starts at the given times and moves only when told.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(steady_time start = steady_time{} + std::chrono::hours(1),
                       system_time wall = system_time{} + std::chrono::hours(24 * 365 * 50));
  steady_time now() const override;
  system_time system_now() const override;
  bool is_manual() const noexcept override { return true; }
  std::size_t subscribe(std::function<void()> on_change) override;
  void unsubscribe(std::size_t id) override;

  // Moves both time lines forward by `d`.
  void advance(std::chrono::nanoseconds d);
  // Sets the wall clock alone (an NTP step or a manual change); monotonic time does not move.
  void set_system_time(system_time t);

 private:
  void notify();
  mutable std::mutex mu_;  // guards steady_, system_
  steady_time steady_;
  system_time system_;
  std::mutex subs_mu_;  // guards subs_ and is held while subscribers run
  std::vector<std::pair<std::size_t, std::function<void()>>> subs_;
  std::size_t next_id_ = 1;  // guarded by subs_mu_
};

}  // namespace taskpool
