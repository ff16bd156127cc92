// src/store/task_rules.hpp — the task table's rules that do not depend on a backend: what a
// valid NewTask is, the retry backoff, a repeating task's next grid slot, whom a report goes to.
// Every TaskStore backend applies these, so the stores agree on every row they write.
//
// Thread-safety: pure functions. Errors: validate() throws std::invalid_argument naming the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
  bool ends_debounce_window = false;          // clear debounce_start: the next arm opens a new window
};
RunEnd end_of_run(const TaskRecord& claimed, const RunResult& outcome, const RetryPolicy& retry, double u,
                  bool rearmed, std::int64_t row_exec_time, std::int64_t now);

// The claim order (highest level, then earliest exec_time, then id): RETURNING gives rows in
// no promised order, so each backend sorts what it claimed.
void sort_claim_order(std::vector<TaskRecord>& claimed);

// Adds `n` tasks of status `status` (a task_status text; others are ignored) to `st`.
void count_status(StoreStats& st, std::string_view status, std::int64_t n);

// commit()'s steps, the same in every backend, inside the caller's open transaction: records
// each completion (complete(item) -> recorded?), then starts each claim (start(claim) -> its
// new attempt count, nullopt when the claim is no longer held), then finish() commits. The
// caller's copies are updated only after finish() returned, so a failed commit leaves them as
// they were.
template <class Complete, class Start, class Finish>
TaskStore::CommitResult commit_runs(const std::vector<TaskStore::Completion>& items, const std::vector<TaskRecord*>& start,
                                    Complete&& complete, Start&& start_one, Finish&& finish) {
  TaskStore::CommitResult out;
  out.recorded.reserve(items.size());
  for (const TaskStore::Completion& c : items) out.recorded.push_back(complete(c));
  std::vector<std::int64_t> attempts(start.size(), 0);
  out.started.assign(start.size(), false);
  for (std::size_t i = 0; i < start.size(); ++i) {
    if (std::optional<std::int64_t> a = start_one(*start[i])) {
      out.started[i] = true;
      attempts[i] = *a;
    }
  }
  finish();
  for (std::size_t i = 0; i < start.size(); ++i)
    if (out.started[i]) start[i]->attempts = static_cast<int>(attempts[i]);
  return out;
}

// One round of the fair order's key walk (docs/schema.md, "Fair claims"), the same in every
// backend: visits the keys with waiting rows in ascending byte order starting with the first key
// after `cursor`, wrapping once to the smallest key and ending before the first visited key comes
// round again; cursor := each key as it is visited. next_key(after) gives the first key > after
// (nullopt after: the smallest), nullopt when there is none; visit(key) returns false to stop.
template <class NextKey, class Visit>
void fair_round(std::optional<std::string>& cursor, NextKey&& next_key, Visit&& visit) {
  std::optional<std::string> first, at = cursor;
  bool wrapped = false, wrapped_after_first = false;
  for (;;) {
    std::optional<std::string> key = next_key(at);
    if (!key) {  // past the last key: once more from the first
      if (wrapped || !at) return;
      wrapped = true;
      wrapped_after_first = first.has_value();
      key = next_key(std::nullopt);
      if (!key) return;
    }
    if (wrapped_after_first && *key >= *first) return;  // every key visited once
    if (!first) first = key;
    at = key;
    cursor = *key;  // the next claim goes on after the last key visited, so all keys get their turn
    if (!visit(*key)) return;
  }
}

// Unset report targets mean the creator and the creator's group (the origin's rule).
inline const std::string& report_user(const TaskRecord& t) { return t.report_user_id.empty() ? t.creator_id : t.report_user_id; }
inline const std::string& report_group(const TaskRecord& t) { return t.report_group_id.empty() ? t.group_id : t.report_group_id; }

}  // namespace taskpool::store
