// src/store/task_rules.cpp — see task_rules.hpp.
#include "store/task_rules.hpp"

#include <algorithm>
#include <stdexcept>

namespace taskpool {

std::string_view to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::waiting: return "waiting";
    case TaskStatus::running: return "running";
    case TaskStatus::done: return "done";
    case TaskStatus::failed: return "failed";
    case TaskStatus::cancelled: return "cancelled";
  }
  return "waiting";
}

std::optional<TaskStatus> parse_task_status(std::string_view s) noexcept {
  for (TaskStatus t : {TaskStatus::waiting, TaskStatus::running, TaskStatus::done, TaskStatus::failed, TaskStatus::cancelled})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

std::string_view to_string(ReportOn r) noexcept {
  switch (r) {
    case ReportOn::always: return "always";
    case ReportOn::failure: return "failure";
    case ReportOn::never: return "never";
  }
  return "always";
}

std::optional<ReportOn> parse_report_on(std::string_view s) noexcept {
  for (ReportOn r : {ReportOn::always, ReportOn::failure, ReportOn::never})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

namespace store {

void validate(const NewTask& t) {
  if (t.task_level < kMinTaskLevel || t.task_level > kMaxTaskLevel)
    throw std::invalid_argument("task_level " + std::to_string(t.task_level) + " is outside " +
                                std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
  if (t.max_attempts < 1) throw std::invalid_argument("max_attempts must be at least 1");
  if (t.repeat_every && t.repeat_every->count() <= 0) throw std::invalid_argument("repeat_every must be positive");
  if (t.exec_task.empty() && t.task_type.empty())
    throw std::invalid_argument("a task needs exec_task (its handler) or task_type");
}

std::optional<std::int64_t> next_slot(std::int64_t slot, std::int64_t every, std::int64_t now) {
  using std::chrono::milliseconds;
  const std::int64_t max = std::chrono::duration_cast<milliseconds>(kMaxTime.time_since_epoch()).count();
  // Inside the range no sum below overflows: slot, now < kMaxTime and every <= kMaxDuration.
  if (every <= 0 || every > kMaxDuration.count() || slot < 0 || slot >= max || now >= max) return std::nullopt;
  std::int64_t next = slot + every;
  if (next <= now) next = slot + ((now - slot) / every + 1) * every;  // missed slots are skipped
  if (next >= max) return std::nullopt;
  return next;
}

std::int64_t backoff_ms(int attempts, const RetryPolicy& p, double u) {
  double d = static_cast<double>(p.base.count());
  for (int i = 1; i < attempts && d < static_cast<double>(p.max.count()); ++i) d *= 2;
  d = std::min(d, static_cast<double>(p.max.count()));
  d *= 1.0 + p.jitter * u;
  d = std::min(d, static_cast<double>(kMaxDuration.count()));  // a huge policy cannot leave the time range
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(d));
}

}  // namespace store
}  // namespace taskpool
