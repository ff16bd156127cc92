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

// The next occurrence of a repeating task whose run belonged to `planned`, at the end of that run
// at `now`: repeat_every: next_slot (the grid); cron: the schedule's first instant strictly after
// max(planned, now) — one catch-up, never a burst. kMaxTime when the series ends (no next
// instant before kMaxTime, or the task does not repeat). Throws std::invalid_argument for a cron
// or tz column that does not parse (another program wrote it).
wall_time next_occurrence(const TaskRecord& t, wall_time planned, wall_time now);

// A cron task's first instant strictly after `now` (its default exec_time); kMaxTime when none.
// Throws std::invalid_argument (naming cron or tz) for a bad expression or zone.
wall_time first_occurrence(const std::string& cron, const std::string& tz, wall_time now);

// Retry delay after the `attempts`-th failed run: min(max, base * 2^(attempts-1)), scaled by
// (1 + jitter * u) for u in [-1, 1] (the caller draws u). In ms, in [0, kMaxDuration].
std::int64_t backoff_ms(int attempts, const RetryPolicy& p, double u);

// Unset report targets mean the creator and the creator's group (the origin's rule).
inline const std::string& report_user(const TaskRecord& t) { return t.report_user_id.empty() ? t.creator_id : t.report_user_id; }
inline const std::string& report_group(const TaskRecord& t) { return t.report_group_id.empty() ? t.group_id : t.report_group_id; }

}  // namespace taskpool::store
