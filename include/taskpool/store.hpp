// taskpool/store.hpp — the durable task table: the backend-neutral TaskStore interface and its
// value types. Backends: taskpool/sqlite_store.hpp (embedded SQLite), taskpool/postgres_store.hpp
// (PostgreSQL, many nodes on one database); open_store() picks one from the database string.
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
// always: every run and a cancellation; failure: failed runs only; never: none.
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
  std::string cron;   // "" = none; 5/6-field expression or @macro; excludes repeat_every
  std::string tz;     // IANA zone of `cron`; "" = UTC
  std::optional<std::chrono::milliseconds> debounce;  // needs unique_key: each upsert re-arms
  std::optional<std::chrono::milliseconds> max_wait;  // needs debounce
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
  // The planned time of the occurrence a pending retry belongs to (a repeating task's grid
  // slot): exec_time is then the retry's backoff time. Null when no retry is pending. In a
  // record returned by claim_due, exec_time is already the run's planned time.
  std::optional<wall_time> planned_time;
  // Fencing token: bumped by every claim. Every "is this still my run" check (start, renew,
  // complete, release) matches it, so a run that was cancelled, retried and claimed again —
  // even by the same dispatcher — can no longer touch the row.
  std::int64_t claim_token = 0;
  // Bumped by an upsert that changes exec_time or payload: a run that ends under a newer
  // revision leaves the task waiting at its new time (the latest upsert wins).
  std::int64_t revision = 0;
  std::string cron;   // "" = none; 5/6-field expression or @macro; excludes repeat_every
  std::string tz;     // IANA zone of `cron`; "" = UTC
  std::optional<std::chrono::milliseconds> debounce;  // needs unique_key: each upsert re-arms
  std::optional<std::chrono::milliseconds> max_wait;  // needs debounce
  std::optional<wall_time> debounce_start;  // first arm of the current debounce window
  // Whether it repeats (repeat_every or cron): its runs go on at the next occurrence.
  bool repeats() const noexcept { return repeat_every.has_value() || !cron.empty(); }
  // The handler that runs it: exec_task, or task_type when exec_task is empty.
  const std::string& handler() const noexcept { return exec_task.empty() ? task_type : exec_task; }
};

// Whether an outcome (done, failed or cancelled) of `t` writes a report, per its report_on.
inline bool writes_report(const TaskRecord& t, TaskStatus outcome) noexcept {
  ReportOn r = t.report_on.value_or(t.repeats() ? ReportOn::failure : ReportOn::always);
  if (r == ReportOn::never) return false;
  return r == ReportOn::always || outcome == TaskStatus::failed;
}

// How one run ended, as reported by the dispatcher.
struct RunResult {
  bool ok = true;
  std::string result;  // ok: the handler's result text
  std::string error;   // !ok: what went wrong
  bool retryable = true;
  // The run was stopped by its dispatcher's shutdown (grace expired), not by its own failure:
  // the task goes back to waiting at the same planned time and the attempt is not counted.
  bool interrupted = false;
};

// What the owner of a lease is known to be (see TaskStore::recover).
enum class OwnerState { unknown, alive, dead };

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
  std::string handler, creator_id, group_id;   // "" = any; handler: exec_task, or task_type when exec_task is ""
  std::string text;                            // substring of payload, result or last_error
  std::optional<wall_time> due_before, due_after;  // exec_time < due_before, >= due_after
  std::int64_t after_id = 0;    // keyset page: ascending ids > after_id
  std::int64_t before_id = 0;   // keyset page, newest first: descending ids < before_id (0 = none)
  bool newest_first = false;
  std::size_t limit = 1000;
};

// Claims (TaskStore::claim_due). Among due tasks of one level, `creator` and `group` fairness
// alternate between creators (groups), each one's earliest due task first, continuing from a
// cursor kept by the store object; `none` is the plain order (exec_time, id). docs/schema.md
// gives the exact order and its cost.
enum class Fairness { none, creator, group };
struct ClaimRequest {
  std::string owner;
  std::size_t limit = 1;
  std::chrono::milliseconds lease = std::chrono::seconds(30);
  Fairness fairness = Fairness::creator;
  struct HandlerCap { std::string handler; std::size_t free; };  // at most `free` more runs of it
  std::vector<HandlerCap> caps;
};

// One dispatcher ("node") as its heartbeat row shows it (TaskStore::heartbeat, nodes).
// owner: its lease owner name; host: the host name; threads/busy/queued: its pool's thread bound,
// running and queued pool tasks; in_flight: its claims not yet recorded; paused: not claiming.
// started: when the node started (its own clock); heartbeat: its last heartbeat (the store's clock).
struct NodeInfo {
  std::string owner, host;
  std::int64_t pid = 0;
  std::size_t threads = 0, busy = 0, queued = 0, in_flight = 0;
  bool paused = false;
  wall_time started{}, heartbeat{};
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
  // threads and processes (a partial unique index decides). With t.debounce, the upsert re-arms
  // a waiting task to now + debounce but never past its window's first arm + max_wait, and a
  // running task's next run starts a new window (docs/schema.md, "Debounce"). A cron task
  // without exec_time is first due at its schedule's next instant after now.
  virtual std::int64_t add(const NewTask& t) = 0;
  // All in one transaction: every task is stored, or (on any error) none.
  virtual std::vector<std::int64_t> add_batch(const std::vector<NewTask>& ts) = 0;
  virtual std::optional<TaskRecord> get(std::int64_t id) = 0;
  // Calls each(row) for the rows q selects, in id order (descending when q.newest_first), streaming: memory stays flat whatever
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

  // waiting or running -> cancelled, with a report. A running task's run is stopped: its
  // dispatcher sees its claim gone within a fraction of a second (wait_for_change), and the row
  // keeps lease_owner/lease_until until that run has ended, so a retry cannot start a second
  // run beside it. False if already finished.
  virtual bool cancel(std::int64_t id) = 0;
  // Moves a waiting task's exec_time (a sliding deadline). False unless waiting. Throws
  // std::invalid_argument when `by` or the new time is outside the range of time_text.hpp.
  virtual bool extend(std::int64_t id, std::chrono::milliseconds by) = 0;
  virtual bool reschedule(std::int64_t id, wall_time at) = 0;
  // failed/cancelled/done -> waiting now, attempts reset. False if waiting or running.
  virtual bool retry(std::int64_t id) = 0;
  virtual bool remove(std::int64_t id) = 0;                  // deletes a non-running task and its reports; false if running/absent
  virtual std::size_t cancel_matching(const ListQuery& q) = 0;  // cancel() for each match, one transaction
  virtual std::size_t retry_matching(const ListQuery& q) = 0;   // retry() for each match, one transaction

  // Dispatcher side. A run's life: claim_due -> start_runs -> (renew_leases)* -> complete, or
  // release when it is given back. Every call after the claim matches the claim's fencing
  // token (TaskRecord::claim_token).
  //
  // Atomically marks up to `req.limit` due waiting tasks running with a lease held by
  // `req.owner` until now + req.lease, highest level first; within a level in req.fairness's
  // order (docs/schema.md). A handler named in req.caps gets at most its `free` rows (none for
  // 0). A row whose previous run may still be ending (a cancelled run that has not acknowledged
  // its end) is not claimable. The attempt is not counted yet (start_runs counts it).
  virtual std::vector<TaskRecord> claim_due(const ClaimRequest& req) = 0;
  // Starts claimed runs, in one transaction: result[i] is true when claims[i] is still held
  // (running under its token); its attempt is then counted (claims[i]->attempts updated). A
  // false one must not run (cancelled or taken over while queued); release() it.
  virtual std::vector<bool> start_runs(const std::vector<TaskRecord*>& claims) = 0;
  // Extends the leases of held claims to now + lease, in one transaction; result[i] false when
  // claims[i] is no longer held (its run must stop; another runner or a cancel owns the task).
  virtual std::vector<bool> renew_leases(const std::vector<const TaskRecord*>& claims, std::chrono::milliseconds lease) = 0;
  // Read-only: whether each claim is still held.
  virtual std::vector<bool> claims_held(const std::vector<const TaskRecord*>& claims) = 0;
  // Records the end of the run claimed as `claimed` (after start_runs) and writes its report
  // per report_on. Repeating tasks go back to waiting at their next grid slot after the planned
  // one; failures are retried per `retry` at a backoff time, keeping the planned time. If an
  // upsert changed the task during the run (revision), it waits for its new time instead. False
  // if the claim is no longer held (the outcome is not recorded; the row's lease is cleared if
  // it still names this claim, acknowledging that the run ended).
  bool complete(const TaskRecord& claimed, const RunResult& outcome, const RetryPolicy& retry) {
    return commit({{&claimed, outcome}}, retry, {}).recorded[0];
  }
  // complete() for many runs in one transaction (group commit); result[i] is complete()'s answer
  // for items[i]. On an exception nothing is recorded and the call may be repeated.
  struct Completion {
    const TaskRecord* claimed;
    RunResult outcome;
  };
  std::vector<bool> complete_batch(const std::vector<Completion>& items, const RetryPolicy& retry) {
    return commit(items, retry, {}).recorded;
  }
  // complete_batch(items) and start_runs(start) in one transaction: a dispatcher recording the
  // runs that just freed workers starts the claims those workers take next in the same commit.
  // (complete and complete_batch are this call; a backend implements only this one.)
  struct CommitResult {
    std::vector<bool> recorded, started;
  };
  virtual CommitResult commit(const std::vector<Completion>& items, const RetryPolicy& retry,
                              const std::vector<TaskRecord*>& start) = 0;
  // Gives a claim back unrun: running -> waiting; `started` says whether start_runs counted an
  // attempt (then uncounted). For a claim no longer held it only clears a lease that still
  // names it. False if the row was not running under this claim.
  virtual bool release(const TaskRecord& claimed, bool started) = 0;
  // Recovery. Running rows go back to waiting when their owner is `dead` per owner_state, or
  // when their lease expired and the owner is not known `alive` (a same-host owner that is
  // provably alive keeps its rows, e.g. across a forward jump of the wall clock). Leases left on
  // finished rows by runs that never acknowledged their end are cleared the same way. Waiting
  // rows whose exec_time is not a time in the supported range (text written by another
  // program, a far-future sentinel) are marked failed with last_error naming the value. Returns
  // how many rows were returned to waiting. owner_state may be empty (every owner unknown).
  virtual std::size_t recover(const std::function<OwnerState(std::string_view owner)>& owner_state) = 0;
  std::size_t recover_expired() { return recover({}); }
  // Earliest exec_time among claimable waiting tasks: exactly the rows claim_due may take, so a
  // "due" answer is never followed by an empty claim for lack of a claimable row.
  virtual std::optional<wall_time> next_due() = 0;
  // Blocks until any process may have committed to the database since the previous call (true),
  // until `deadline` (false), or until interrupt_wait(). SQLite: PRAGMA data_version plus an
  // inotify watch of the database file and its -wal file, so a row written by another process
  // (the command, a bot with sqlite3) wakes the waiter within milliseconds.
  virtual bool wait_for_change(std::chrono::steady_clock::time_point deadline) = 0;
  // Makes a wait_for_change in progress (on any thread) return now.
  virtual void interrupt_wait() = 0;

  // Nodes and the maintenance leader (docs/design.md, "Nodes"). Times are the store's clock
  // (SQLite: the calling process's; PostgreSQL: the server's), so nodes with skewed clocks agree.
  // heartbeat: upserts n's row by n.owner, with heartbeat = now (n.heartbeat is ignored).
  // remove_node: deletes the row of `owner` and gives up the leadership it holds (a clean stop),
  // so another node may lead at once. nodes: the rows whose heartbeat is at most max_age old, by
  // owner; it only reads (a dashboard or `taskpool nodes` may watch a database it must not
  // change). prune_nodes: deletes the rows older than max_age and returns how many (dead nodes
  // age out; the maintenance leader calls it).
  // try_lead: true when `owner` holds the single leader row until now + ttl: it takes the row if
  // it is free, expired or already its own (renewing it); false while another owner's row is
  // unexpired. Leadership only saves work (recovery and prune are idempotent and fenced): two
  // leaders for a moment, after a stall longer than ttl, are harmless.
  virtual void heartbeat(const NodeInfo& n) = 0;              // upsert this node's row (heartbeat = now, store's clock)
  virtual void remove_node(std::string_view owner) = 0;       // clean stop
  virtual std::vector<NodeInfo> nodes(std::chrono::milliseconds max_age) = 0;  // live nodes; reads only
  virtual std::size_t prune_nodes(std::chrono::milliseconds max_age) = 0;     // deletes older rows
  virtual bool try_lead(std::string_view owner, std::chrono::milliseconds ttl) = 0;  // leader row with a TTL

  virtual std::vector<Report> reports(bool unacked_only, std::size_t limit) = 0;
  // The newest `limit` reports of one task, newest first (a task's run history). Not pure: a
  // backend without it answers none (the HTTP API then shows the task's own fields only).
  virtual std::vector<Report> task_reports(std::int64_t task_id, std::size_t limit) {
    (void)task_id;
    (void)limit;
    return {};
  }
  virtual std::size_t ack_reports(const std::vector<std::int64_t>& ids) = 0;
  // Deletes finished tasks (done/failed/cancelled) and acknowledged reports last updated before
  // now - retention. Returns the number of tasks deleted.
  virtual std::size_t prune(std::chrono::milliseconds retention) = 0;
  virtual StoreStats stats() = 0;
};

struct StoreOptions {
  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5);   // SQLite lock wait
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10); // PostgreSQL connect
  std::chrono::milliseconds connect_wait{0};  // PostgreSQL: PostgresOptions::connect_wait
  bool create = true;      // create/migrate the schema if missing
  bool read_only = false;  // open without writing anything
};
// A path → SQLite; "postgresql://..." or "postgres://..." → PostgreSQL. Errors never show a password.
std::unique_ptr<TaskStore> open_store(const std::string& db, const StoreOptions& opts = {});

}  // namespace taskpool
