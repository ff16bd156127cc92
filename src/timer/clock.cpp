// src/timer/clock.cpp — see taskpool/clock.hpp.
#include "taskpool/clock.hpp"

namespace taskpool {

namespace {
class RealClock final : public Clock {
 public:
  steady_time now() const override { return std::chrono::steady_clock::now(); }
  system_time system_now() const override { return std::chrono::system_clock::now(); }
};
}  // namespace

Clock& real_clock() noexcept {
  static RealClock clock;
  return clock;
}

ManualClock::ManualClock(steady_time start, system_time wall) : steady_(start), system_(wall) {}

Clock::steady_time ManualClock::now() const {
  std::lock_guard lk(mu_);
  return steady_;
}
Clock::system_time ManualClock::system_now() const {
  std::lock_guard lk(mu_);
  return system_;
}
std::size_t ManualClock::subscribe(std::function<void()> on_change) {
  std::lock_guard lk(subs_mu_);
  subs_.emplace_back(next_id_, std::move(on_change));
  return next_id_++;
}
void ManualClock::unsubscribe(std::size_t id) {
  std::lock_guard lk(subs_mu_);
  std::erase_if(subs_, [&](auto& s) { return s.first == id; });
}
void ManualClock::advance(std::chrono::nanoseconds d) {
  {
    std::lock_guard lk(mu_);
    steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
    system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  }
  notify();
}
void ManualClock::set_system_time(system_time t) {
  {
    std::lock_guard lk(mu_);
    system_ = t;
  }
  notify();
}
void ManualClock::notify() {
  std::lock_guard lk(subs_mu_);
  for (auto& s : subs_) s.second();
}

}  // namespace taskpool
