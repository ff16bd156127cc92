// src/store/task_rules.hpp — the task table's rules that do not depend on a backend: what a
// valid NewTask is, the retry backoff, a repeating task's next grid slot, whom a report goes to.
// Every TaskStore backend applies these, so the stores agree on every row they write.
//
// Thread-safety: pure functions. Errors: validate() throws std::invalid_argument naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "taskpool/store.hpp"

namespace taskpool::store {

// Throws std::invalid_argument (one line, naming the field) for a task no store may accept.
void validate(const NewTask& t);

// The next grid slot of a repeating task after `now`: slot + k * every for the smallest k >= 1
// with a result > now (missed slots are skipped, never run in a burst). Times in ms. nullopt
// when that slot is at or past kMaxTime (the series ends there) or the inputs are out of range.
std::optional<std::int64_t> next_slot(std::int64_t slot, std::int64_t every, std::int64_t now);

// Retry delay after the `attempts`-th failed run: min(max, base * 2^(attempts-1)), scaled by
// (1 + jitter * u) for u in [-1, 1] (the caller draws u). In ms, in [0, kMaxDuration].
std::int64_t backoff_ms(int attempts, const RetryPolicy& p, double u);

// What the end of a claimed run does to its task (every backend applies it inside the
// transaction that records the outcome): the row's next state and which report to write.
// `rearmed`: an upsert changed the task during the run (revision moved); `row_exec_time`: the
// row's exec_time now; `u` in [-1, 1] draws the retry jitter; times in ms on the store's clock.
struct RunEnd {
  TaskStatus status = TaskStatus::done;
  std::int64_t exec_time = 0;
  int attempts = 0;
  std::optional<std::int64_t> planned_time;
  std::optional<std::string> result, error;   // result: kept when null (the last good result stays)
  std::optional<TaskStatus> report;           // the outcome to report, if report_on allows it
};
RunEnd end_of_run(const TaskRecord& claimed, const RunResult& outcome, const RetryPolicy& retry, double u,
                  bool rearmed, std::int64_t row_exec_time, std::int64_t now);

// Unset report targets mean the creator and the creator's group (the origin's rule).
inline const std::string& report_user(const TaskRecord& t) { return t.report_user_id.empty() ? t.creator_id : t.report_user_id; }
inline const std::string& report_group(const TaskRecord& t) { return t.report_group_id.empty() ? t.group_id : t.report_group_id; }

}  // namespace taskpool::store
