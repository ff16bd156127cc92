// taskpool/store.hpp — the durable task table: the backend-neutral TaskStore interface and its
// value types. Backends: taskpool/sqlite_store.hpp (embedded SQLite).
//
// A task row keeps the origin notes' field names (creator_id, group_id, task_type, by_plugin,
// exec_task, payload, create_time, exec_time, task_status, task_level, report_user_id,
// report_group_id) plus what a real queue needs (repeat_every, attempts, max_attempts,
// last_error, result, unique_key, lease_owner, lease_until, updated_time). docs/schema.md
// documents the table, its invariants and the recovery argument.
//
// Thread-safety: one TaskStore object may be used from many threads at once (the SQLite store
// serializes its connection internally); many processes may open the same database.
// Blocking: every call is a short transaction; it may wait up to the busy timeout for another
// process's write lock and then throws StoreError ("database is locked").
// Errors: bad input throws std::invalid_argument naming the field, and nothing is written;
// storage problems throw StoreError.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskpool/errors.hpp"
#include "taskpool/options.hpp"
#include "taskpool/time_text.hpp"

namespace taskpool {

class StoreError : public Error {
 public:
  using Error::Error;
};

enum class TaskStatus { waiting, running, done, failed, cancelled };
std::string_view to_string(TaskStatus s) noexcept;
// nullopt for anything but the five status names.
std::optional<TaskStatus> parse_task_status(std::string_view s) noexcept;

// task_level range: a task runs on the pool at Priority{task_level}, so the two ranges are one.
inline constexpr int kMinTaskLevel = 0;
inline constexpr int kMaxTaskLevel = kPriorityLevels - 1;
static_assert(kMinTaskLevel == 0 && kMaxTaskLevel == 9, "schema CHECKs and docs/schema.md say task_level 0..9");

// Which runs write a report (the outbox the application reads). Unset: every run of a one-shot
// task, failed runs of a repeating one (a 3-second job must not write 1,200 reports an hour).
enum class ReportOn { always, failure, never };
std::string_view to_string(ReportOn r) noexcept;
std::optional<ReportOn> parse_report_on(std::string_view s) noexcept;  // "always" | "failure" | "never"

// A task to insert. Empty report ids mean "report to the creator / the creator's group".
struct NewTask {
  std::string creator_id, group_id, task_type, by_plugin;
  std::string exec_task;         // handler name; empty = task_type (the origin's records leave it empty)
  std::string payload = "{}";    // JSON text: the handler's arguments
  std::optional<wall_time> exec_time;  // default: now
  int task_level = 5;            // kMinTaskLevel..kMaxTaskLevel, higher first among due tasks
  std::string report_user_id, report_group_id;
  std::optional<std::chrono::milliseconds> repeat_every;  // null: one-shot
  int max_attempts = 1;          // >= 1; failures are retried with backoff up to this many runs
  std::string unique_key;        // non-empty: upsert the live task with this key
  std::optional<ReportOn> report_on;
};

struct TaskRecord {
  std::int64_t id = 0;
  std::string creator_id, group_id, task_type, by_plugin, exec_task, payload;
  wall_time create_time{}, exec_time{}, updated_time{};
  TaskStatus status = TaskStatus::waiting;
  int task_level = 5;
  std::string report_user_id, report_group_id;
  std::optional<std::chrono::milliseconds> repeat_every;
  int attempts = 0, max_attempts = 1;
  std::optional<std::string> last_error, result, unique_key, lease_owner;
  std::optional<wall_time> lease_until;
  std::optional<ReportOn> report_on;
  // The handler that runs it: exec_task, or task_type when exec_task is empty.
  const std::string& handler() const noexcept { return exec_task.empty() ? task_type : exec_task; }
};

// How one run ended, as reported by the dispatcher.
struct RunResult {
  bool ok = true;
  std::string result;  // ok: the handler's result text
  std::string error;   // !ok: what went wrong
  bool retryable = true;
};

struct Report {
  std::int64_t id = 0, task_id = 0;
  std::string report_user_id, report_group_id;  // resolved: never empty when the task had a creator
  TaskStatus status = TaskStatus::done;
  std::optional<std::string> result, error;
  wall_time created_time{};
  std::optional<wall_time> acked_time;
};

struct StoreStats {
  std::int64_t waiting = 0, running = 0, done = 0, failed = 0, cancelled = 0, unacked_reports = 0;
  std::optional<wall_time> next_due;
};

struct ListQuery {
  std::optional<TaskStatus> status;
  std::size_t limit = 1000;
};

// Retry policy: delay = min(max, base * 2^(attempts-1)) * (1 + jitter * U[-1, 1]).
struct RetryPolicy {
  std::chrono::milliseconds base = std::chrono::seconds(1);
  std::chrono::milliseconds max = std::chrono::minutes(10);
  double jitter = 0.2;
};

class TaskStore {
 public:
  virtual ~TaskStore() = default;

  // Inserts `t`, or — when t.unique_key is set and a waiting/running task has that key — updates
  // that task's exec_time, payload and task_level instead. Returns the id. Race-free across
  // threads and processes (a partial unique index decides).
  virtual std::int64_t add(const NewTask& t) = 0;
  // All in one transaction: every task is stored, or (on any error) none.
  virtual std::vector<std::int64_t> add_batch(const std::vector<NewTask>& ts) = 0;
  virtual std::optional<TaskRecord> get(std::int64_t id) = 0;
  // Calls each(row) for the rows q selects, in id order, streaming: memory stays flat whatever
  // q.limit is. each returns false to stop early. The store's lock is held while it runs, so
  // each must not call back into the store.
  virtual void scan(const ListQuery& q, const std::function<bool(const TaskRecord&)>& each) = 0;
  // scan() collected into a vector.
  std::vector<TaskRecord> list(const ListQuery& q) {
    std::vector<TaskRecord> out;
    scan(q, [&](const TaskRecord& r) {
      out.push_back(r);
      return true;
    });
    return out;
  }

  // waiting -> cancelled (a running task is cancelled when its run ends). False if finished.
  virtual bool cancel(std::int64_t id) = 0;
  // Moves a waiting task's exec_time (a sliding deadline). False unless waiting.
  virtual bool extend(std::int64_t id, std::chrono::milliseconds by) = 0;
  virtual bool reschedule(std::int64_t id, wall_time at) = 0;
  // failed/cancelled/done -> waiting now, attempts reset. False if waiting or running.
  virtual bool retry(std::int64_t id) = 0;

  // Dispatcher side. Atomically marks up to `limit` due waiting tasks running with a lease held
  // by `owner` until now + lease, highest level first, then earliest exec_time.
  virtual std::vector<TaskRecord> claim_due(std::string_view owner, std::size_t limit, std::chrono::milliseconds lease) = 0;
  // Extends the lease of a running task still held by `owner`. False when the lease was lost.
  virtual bool renew_lease(std::int64_t id, std::string_view owner, std::chrono::milliseconds lease) = 0;
  // Records the end of the run claimed as `claimed` and writes its report. Repeating tasks go
  // back to waiting at their next grid time; failures are retried per `retry`. False if the
  // lease was lost meanwhile (the run is not recorded; another runner owns the task).
  virtual bool complete(const TaskRecord& claimed, std::string_view owner, const RunResult& outcome, const RetryPolicy& retry) = 0;
  // complete() for many runs in one transaction (group commit); result[i] is complete()'s answer
  // for items[i].
  struct Completion {
    const TaskRecord* claimed;
    RunResult outcome;
  };
  virtual std::vector<bool> complete_batch(const std::vector<Completion>& items, std::string_view owner,
                                           const RetryPolicy& retry) = 0;
  // Gives a claimed task back unrun (graceful stop): running -> waiting, attempt not counted.
  virtual bool release(const TaskRecord& claimed, std::string_view owner) = 0;
  // Running tasks whose lease expired go back to waiting (their runner died). Returns how many.
  virtual std::size_t recover_expired() = 0;
  // Earliest exec_time among waiting tasks.
  virtual std::optional<wall_time> next_due() = 0;
  // Changes whenever any process commits to the database (cheap; SQLite's data_version).
  virtual std::uint64_t change_counter() = 0;

  virtual std::vector<Report> reports(bool unacked_only, std::size_t limit) = 0;
  virtual std::size_t ack_reports(const std::vector<std::int64_t>& ids) = 0;
  // Deletes finished tasks (done/failed/cancelled) and acknowledged reports last updated before
  // now - retention. Returns the number of tasks deleted.
  virtual std::size_t prune(std::chrono::milliseconds retention) = 0;
  virtual StoreStats stats() = 0;
};

}  // namespace taskpool
