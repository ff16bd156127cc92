// src/store/sqlite_store.cpp — TaskStore on SQLite. Schema and invariants: docs/schema.md.
//
// Design note (on-disk schema, recovery).
//  - Identity: PRAGMA application_id = 0x54504F4C ("TPOL") marks a taskpool database;
//    PRAGMA user_version is the schema version. Opening checks both: another application's
//    database, or a newer schema, is refused without writing anything. Migrations run in one
//    BEGIN IMMEDIATE transaction, so two processes opening a fresh file cannot both create it.
//  - Journal: WAL, synchronous=NORMAL: a committed transaction survives the process being
//    killed at any moment (SIGKILL) and the file is never corrupted; only an OS crash or power
//    loss can drop the last commits. Writes use BEGIN IMMEDIATE (the write lock up front, so two
//    writers never deadlock on lock upgrade) and a busy timeout.
//  - Ownership of a run: claim_due flips waiting -> running and writes lease_owner/lease_until in
//    the same UPDATE ... RETURNING; complete() and release() act only if the row is still
//    running under the caller's lease. A runner that dies leaves a running row whose lease
//    expires; recover_expired() returns it to waiting, so every task runs at least once.
//  - Repeating tasks: exec_time is the planned grid slot of the next run. complete() moves it to
//    the first grid point after now (slot + k * repeat_every), so the grid never drifts and a
//    slot is claimed by at most one runner at a time.
//  - Upsert: a partial unique index on unique_key over waiting/running rows makes "add or update
//    the live task with this key" one atomic statement, across threads and processes.
#include <algorithm>
#include <mutex>
#include <random>

#include "store/sqlite/sqlite.hpp"
#include "store/task_rules.hpp"

namespace taskpool {

namespace store {
namespace {

constexpr std::int64_t kApplicationId = 0x54504F4C;  // "TPOL"

// Migration i takes the schema from version i to i + 1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE tasks (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  creator_id      TEXT    NOT NULL DEFAULT '',
  group_id        TEXT    NOT NULL DEFAULT '',
  task_type       TEXT    NOT NULL DEFAULT '',
  by_plugin       TEXT    NOT NULL DEFAULT '',
  exec_task       TEXT    NOT NULL DEFAULT '',
  payload         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(payload)),
  create_time     INTEGER NOT NULL,
  exec_time       INTEGER NOT NULL,
  task_status     TEXT    NOT NULL DEFAULT 'waiting'
                  CHECK (task_status IN ('waiting', 'running', 'done', 'failed', 'cancelled')),
  task_level      INTEGER NOT NULL DEFAULT 5 CHECK (task_level BETWEEN 0 AND 9),
  report_user_id  TEXT    NOT NULL DEFAULT '',
  report_group_id TEXT    NOT NULL DEFAULT '',
  repeat_every    INTEGER CHECK (repeat_every IS NULL OR repeat_every > 0),
  attempts        INTEGER NOT NULL DEFAULT 0,
  max_attempts    INTEGER NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
  last_error      TEXT,
  result          TEXT,
  unique_key      TEXT,
  lease_owner     TEXT,
  lease_until     INTEGER,
  updated_time    INTEGER NOT NULL
);
CREATE UNIQUE INDEX tasks_live_unique ON tasks (unique_key)
  WHERE unique_key IS NOT NULL AND task_status IN ('waiting', 'running');
CREATE INDEX tasks_due ON tasks (task_status, exec_time);
CREATE INDEX tasks_updated ON tasks (updated_time);
CREATE TABLE reports (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id         INTEGER NOT NULL,
  report_user_id  TEXT    NOT NULL,
  report_group_id TEXT    NOT NULL,
  status          TEXT    NOT NULL CHECK (status IN ('done', 'failed', 'cancelled')),
  result          TEXT,
  error           TEXT,
  created_time    INTEGER NOT NULL,
  acked_time      INTEGER
);
CREATE INDEX reports_unacked ON reports (id) WHERE acked_time IS NULL;
)sql",
    // v2: the due index leads with the priority level, so a claim walks the due rows of each
    // level in exec_time order straight off the index: it reads only the rows it claims
    // instead of scanning and sorting every due row (quadratic on a large backlog).
    R"sql(
DROP INDEX tasks_due;
CREATE INDEX tasks_due ON tasks (task_status, task_level, exec_time);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

constexpr const char* kCols =
    "id, creator_id, group_id, task_type, by_plugin, exec_task, payload, create_time, exec_time, task_status, "
    "task_level, report_user_id, report_group_id, repeat_every, attempts, max_attempts, last_error, result, "
    "unique_key, lease_owner, lease_until, updated_time";

std::int64_t to_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
wall_time from_ms(std::int64_t ms) { return wall_time(std::chrono::milliseconds(ms)); }
std::int64_t now_ms() { return to_ms(std::chrono::system_clock::now()); }

TaskRecord read_record(const Stmt& s) {
  TaskRecord r;
  r.id = s.i64(0);
  r.creator_id = s.text(1);
  r.group_id = s.text(2);
  r.task_type = s.text(3);
  r.by_plugin = s.text(4);
  r.exec_task = s.text(5);
  r.payload = s.text(6);
  r.create_time = from_ms(s.i64(7));
  r.exec_time = from_ms(s.i64(8));
  r.status = parse_task_status(s.text(9)).value_or(TaskStatus::waiting);
  r.task_level = static_cast<int>(s.i64(10));
  r.report_user_id = s.text(11);
  r.report_group_id = s.text(12);
  if (auto v = s.opt_i64(13)) r.repeat_every = std::chrono::milliseconds(*v);
  r.attempts = static_cast<int>(s.i64(14));
  r.max_attempts = static_cast<int>(s.i64(15));
  r.last_error = s.opt_text(16);
  r.result = s.opt_text(17);
  r.unique_key = s.opt_text(18);
  r.lease_owner = s.opt_text(19);
  if (auto v = s.opt_i64(20)) r.lease_until = from_ms(*v);
  r.updated_time = from_ms(s.i64(21));
  return r;
}

class SqliteTaskStore final : public TaskStore {
 public:
  SqliteTaskStore(const std::string& path, const SqliteOptions& opts) {
    int flags = SQLITE_OPEN_READWRITE | (opts.create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = "taskpool store: cannot open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      sqlite3_close(db_);
      throw StoreError(msg);
    }
    try {
      sqlite3_busy_timeout(db_, static_cast<int>(opts.busy_timeout.count()));
      sqlite3_extended_result_codes(db_, 1);
      migrate(path);
      exec("PRAGMA journal_mode=WAL");
      exec("PRAGMA synchronous=NORMAL");
      prepare();
    } catch (...) {
      stmts_ = {};
      sqlite3_close(db_);
      throw;
    }
  }
  ~SqliteTaskStore() override {
    stmts_ = {};
    sqlite3_close(db_);
  }

  std::int64_t add(const NewTask& t) override {
    std::lock_guard lk(mu_);
    validate_locked(t);
    Tx tx(*this);
    std::int64_t id = insert_locked(t, now_ms());
    tx.commit();
    return id;
  }

  std::vector<std::int64_t> add_batch(const std::vector<NewTask>& ts) override {
    std::lock_guard lk(mu_);
    for (const NewTask& t : ts) validate_locked(t);
    Tx tx(*this);
    std::vector<std::int64_t> ids;
    ids.reserve(ts.size());
    std::int64_t now = now_ms();
    for (const NewTask& t : ts) ids.push_back(insert_locked(t, now));
    tx.commit();
    return ids;
  }

  std::optional<TaskRecord> get(std::int64_t id) override {
    std::lock_guard lk(mu_);
    return get_locked(id);
  }

  void scan(const ListQuery& q, const std::function<bool(const TaskRecord&)>& each) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.list);
    if (q.status) {
      s->bind(1, to_string(*q.status));
    } else {
      s->bind_null(1);
    }
    s->bind(2, static_cast<std::int64_t>(q.limit));
    while (s->step())
      if (!each(read_record(*s))) break;
  }

  bool cancel(std::int64_t id) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    auto cur = get_locked(id);
    if (!cur || (cur->status != TaskStatus::waiting && cur->status != TaskStatus::running)) return false;
    std::int64_t now = now_ms();
    StmtScope s(stmts_.set_cancelled);
    s->bind(1, now).bind(2, id).run();
    write_report_locked(*cur, TaskStatus::cancelled, std::nullopt, std::string("cancelled"), now);
    tx.commit();
    return true;
  }

  bool extend(std::int64_t id, std::chrono::milliseconds by) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.extend);
    s->bind(1, static_cast<std::int64_t>(by.count())).bind(2, now_ms()).bind(3, id);
    s->run();
    return sqlite3_changes(db_) == 1;
  }

  bool reschedule(std::int64_t id, wall_time at) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.reschedule);
    s->bind(1, to_ms(at)).bind(2, now_ms()).bind(3, id);
    s->run();
    return sqlite3_changes(db_) == 1;
  }

  bool retry(std::int64_t id) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.retry);
    std::int64_t now = now_ms();
    s->bind(1, now).bind(2, id);
    try {
      s->run();
    } catch (const StoreError&) {
      // The unique key is live again in another task: report it as "cannot retry".
      if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE) return false;
      throw;
    }
    return sqlite3_changes(db_) == 1;
  }

  std::vector<TaskRecord> claim_due(std::string_view owner, std::size_t limit, std::chrono::milliseconds lease) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    std::int64_t now = now_ms();
    // Highest level first; within a level, earliest exec_time then id: one index range per level.
    std::string ids = "[";
    std::size_t picked = 0;
    for (int level = kMaxTaskLevel; level >= kMinTaskLevel && picked < limit; --level) {
      StmtScope s(stmts_.due_ids);
      s->bind(1, level).bind(2, now).bind(3, static_cast<std::int64_t>(limit - picked));
      while (s->step()) {
        if (picked++ > 0) ids += ',';
        ids += std::to_string(s->i64(0));
      }
    }
    std::vector<TaskRecord> out;
    if (picked == 0) return out;  // nothing written: the transaction rolls back
    ids += ']';
    StmtScope s(stmts_.claim);
    s->bind(1, owner).bind(2, now + lease.count()).bind(3, now).bind(4, ids);
    out.reserve(picked);
    while (s->step()) out.push_back(read_record(*s));
    s->reset();
    tx.commit();
    // RETURNING yields rows in no promised order: restore the claim order.
    std::sort(out.begin(), out.end(), [](const TaskRecord& a, const TaskRecord& b) {
      if (a.task_level != b.task_level) return a.task_level > b.task_level;
      if (a.exec_time != b.exec_time) return a.exec_time < b.exec_time;
      return a.id < b.id;
    });
    return out;
  }

  bool renew_lease(std::int64_t id, std::string_view owner, std::chrono::milliseconds lease) override {
    std::lock_guard lk(mu_);
    std::int64_t now = now_ms();
    StmtScope s(stmts_.renew);
    s->bind(1, now + lease.count()).bind(2, now).bind(3, id).bind(4, owner);
    s->run();
    return sqlite3_changes(db_) == 1;
  }

  bool complete(const TaskRecord& claimed, std::string_view owner, const RunResult& outcome, const RetryPolicy& retry) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    bool ok = complete_locked(claimed, owner, outcome, retry);
    tx.commit();
    return ok;
  }

  std::vector<bool> complete_batch(const std::vector<Completion>& items, std::string_view owner,
                                   const RetryPolicy& retry) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    std::vector<bool> out;
    out.reserve(items.size());
    for (const Completion& c : items) out.push_back(complete_locked(*c.claimed, owner, c.outcome, retry));
    tx.commit();
    return out;
  }

  bool release(const TaskRecord& claimed, std::string_view owner) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.release);
    s->bind(1, now_ms()).bind(2, claimed.id).bind(3, owner);
    s->run();
    return sqlite3_changes(db_) == 1;
  }

  std::size_t recover_expired() override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.recover);
    s->bind(1, now_ms());
    s->run();
    return static_cast<std::size_t>(sqlite3_changes(db_));
  }

  std::optional<wall_time> next_due() override {
    std::lock_guard lk(mu_);
    return next_due_locked();
  }

  std::uint64_t change_counter() override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.data_version);
    s->step();
    // data_version moves only for other connections' commits; add every row this connection
    // changed (transactions and single auto-committed statements alike).
    return static_cast<std::uint64_t>(s->i64(0)) + static_cast<std::uint64_t>(sqlite3_total_changes64(db_));
  }

  std::vector<Report> reports(bool unacked_only, std::size_t limit) override {
    std::lock_guard lk(mu_);
    StmtScope s(stmts_.reports);
    s->bind(1, unacked_only ? 1 : 0).bind(2, static_cast<std::int64_t>(limit));
    std::vector<Report> out;
    while (s->step()) {
      Report r;
      r.id = s->i64(0);
      r.task_id = s->i64(1);
      r.report_user_id = s->text(2);
      r.report_group_id = s->text(3);
      r.status = parse_task_status(s->text(4)).value_or(TaskStatus::done);
      r.result = s->opt_text(5);
      r.error = s->opt_text(6);
      r.created_time = from_ms(s->i64(7));
      if (auto a = s->opt_i64(8)) r.acked_time = from_ms(*a);
      out.push_back(std::move(r));
    }
    return out;
  }

  std::size_t ack_reports(const std::vector<std::int64_t>& ids) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    std::size_t n = 0;
    std::int64_t now = now_ms();
    for (std::int64_t id : ids) {
      StmtScope s(stmts_.ack);
      s->bind(1, now).bind(2, id).run();
      n += static_cast<std::size_t>(sqlite3_changes(db_));
    }
    tx.commit();
    return n;
  }

  std::size_t prune(std::chrono::milliseconds retention) override {
    std::lock_guard lk(mu_);
    Tx tx(*this);
    std::int64_t cutoff = now_ms() - retention.count();
    StmtScope a(stmts_.prune_tasks);
    a->bind(1, cutoff).run();
    auto n = static_cast<std::size_t>(sqlite3_changes(db_));
    StmtScope b(stmts_.prune_reports);
    b->bind(1, cutoff).run();
    tx.commit();
    return n;
  }

  StoreStats stats() override {
    std::lock_guard lk(mu_);
    StoreStats st;
    StmtScope s(stmts_.counts);
    while (s->step()) {
      auto status = parse_task_status(s->text(0));
      std::int64_t n = s->i64(1);
      if (!status) continue;
      switch (*status) {
        case TaskStatus::waiting: st.waiting = n; break;
        case TaskStatus::running: st.running = n; break;
        case TaskStatus::done: st.done = n; break;
        case TaskStatus::failed: st.failed = n; break;
        case TaskStatus::cancelled: st.cancelled = n; break;
      }
    }
    s->reset();
    StmtScope r(stmts_.unacked);
    r->step();
    st.unacked_reports = r->i64(0);
    r->reset();
    st.next_due = next_due_locked();
    return st;
  }

 private:
  // BEGIN IMMEDIATE ... COMMIT; rolls back when destroyed uncommitted (nothing half-written).
  class Tx {
   public:
    explicit Tx(SqliteTaskStore& s) : s_(s) { s_.exec("BEGIN IMMEDIATE"); }
    void commit() {
      s_.exec("COMMIT");
      done_ = true;
    }
    ~Tx() {
      if (!done_) sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

   private:
    SqliteTaskStore& s_;
    bool done_ = false;
  };

  void exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = std::string("taskpool store: ") + (err ? err : sqlite3_errstr(rc));
      sqlite3_free(err);
      throw StoreError(msg);
    }
  }
  std::int64_t pragma_int(const char* sql) {
    Stmt s(db_, sql);
    return s.step() ? s.i64(0) : 0;
  }

  void migrate(const std::string& path) {
    // Reading the header fails here for a file that is not SQLite at all.
    std::int64_t app;
    try {
      app = pragma_int("PRAGMA application_id");
    } catch (const StoreError&) {
      throw StoreError("taskpool store: " + path + ": " + sqlite3_errmsg(db_));
    }
    std::int64_t version = pragma_int("PRAGMA user_version");
    std::int64_t tables = pragma_int("SELECT count(*) FROM sqlite_master");
    if (app != kApplicationId && !(app == 0 && tables == 0))
      throw StoreError("taskpool store: " + path + " is not a taskpool database");
    if (version > kSchemaVersion)
      throw StoreError("taskpool store: " + path + " has schema version " + std::to_string(version) +
                       ", newer than this taskpool (" + std::to_string(kSchemaVersion) + ")");
    if (app == kApplicationId && version == kSchemaVersion) return;
    Tx tx(*this);
    // Re-read under the write lock: another process may have migrated meanwhile.
    version = pragma_int("PRAGMA user_version");
    app = pragma_int("PRAGMA application_id");
    if (app == 0) {
      exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
      version = 0;
    }
    for (std::int64_t v = version; v < kSchemaVersion; ++v) exec(kMigrations[v]);
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    tx.commit();
  }

  void prepare() {
    auto p = [&](const std::string& sql) { return Stmt(db_, sql); };
    const std::string cols = kCols;
    stmts_.insert = p(
        "INSERT INTO tasks (creator_id, group_id, task_type, by_plugin, exec_task, payload, create_time, exec_time, "
        "task_status, task_level, report_user_id, report_group_id, repeat_every, attempts, max_attempts, unique_key, "
        "updated_time) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'waiting', ?9, ?10, ?11, ?12, 0, ?13, ?14, ?7) "
        "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND task_status IN ('waiting', 'running') "
        "DO UPDATE SET exec_time = excluded.exec_time, payload = excluded.payload, task_level = excluded.task_level, "
        "updated_time = excluded.updated_time RETURNING id");
    stmts_.get = p("SELECT " + cols + " FROM tasks WHERE id = ?1");
    stmts_.list = p("SELECT " + cols + " FROM tasks WHERE ?1 IS NULL OR task_status = ?1 ORDER BY id LIMIT ?2");
    stmts_.json_valid = p("SELECT json_valid(?1)");
    stmts_.set_cancelled = p(
        "UPDATE tasks SET task_status = 'cancelled', lease_owner = NULL, lease_until = NULL, updated_time = ?1 "
        "WHERE id = ?2");
    stmts_.extend = p(
        "UPDATE tasks SET exec_time = exec_time + ?1, updated_time = ?2 WHERE id = ?3 AND task_status = 'waiting'");
    stmts_.reschedule = p("UPDATE tasks SET exec_time = ?1, updated_time = ?2 WHERE id = ?3 AND task_status = 'waiting'");
    stmts_.retry = p(
        "UPDATE tasks SET task_status = 'waiting', exec_time = ?1, attempts = 0, last_error = NULL, updated_time = ?1 "
        "WHERE id = ?2 AND task_status IN ('done', 'failed', 'cancelled')");
    // Claiming: the ids are picked in the same transaction, so they are all waiting. (A status
    // test in the UPDATE would lead SQLite to scan the status index instead of the ids.)
    stmts_.due_ids = p(
        "SELECT id FROM tasks WHERE task_status = 'waiting' AND task_level = ?1 AND exec_time <= ?2 "
        "ORDER BY exec_time, id LIMIT ?3");
    stmts_.claim = p(
        "UPDATE tasks SET task_status = 'running', lease_owner = ?1, lease_until = ?2, attempts = attempts + 1, "
        "updated_time = ?3 WHERE id IN (SELECT value FROM json_each(?4)) RETURNING " + cols);
    stmts_.renew = p(
        "UPDATE tasks SET lease_until = ?1, updated_time = ?2 WHERE id = ?3 AND task_status = 'running' AND "
        "lease_owner = ?4");
    // ?1/?2 are the next state computed from the claimed row. If exec_time moved during the run
    // (an upsert or reschedule re-armed the task) the row waits for its new time instead,
    // unless the run is being retried (?9).
    stmts_.finish_run = p(
        "UPDATE tasks SET task_status = CASE WHEN exec_time = ?8 OR ?9 THEN ?1 ELSE 'waiting' END, "
        "exec_time = CASE WHEN exec_time = ?8 OR ?9 THEN ?2 ELSE exec_time END, attempts = ?3, "
        "result = coalesce(?4, result), last_error = ?5, lease_owner = NULL, lease_until = NULL, updated_time = ?6 "
        "WHERE id = ?7 AND task_status = 'running' AND lease_owner = ?10");
    stmts_.release = p(
        "UPDATE tasks SET task_status = 'waiting', attempts = max(attempts - 1, 0), lease_owner = NULL, "
        "lease_until = NULL, updated_time = ?1 WHERE id = ?2 AND task_status = 'running' AND lease_owner = ?3");
    stmts_.recover = p(
        "UPDATE tasks SET task_status = 'waiting', lease_owner = NULL, lease_until = NULL, updated_time = ?1 "
        "WHERE task_status = 'running' AND lease_until < ?1");
    // The earliest due time of each level is one index probe.
    stmts_.next_due = p(
        "WITH levels(v) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) "
        "SELECT min((SELECT min(exec_time) FROM tasks WHERE task_status = 'waiting' AND task_level = v)) FROM levels");
    stmts_.data_version = p("PRAGMA data_version");
    stmts_.report = p(
        "INSERT INTO reports (task_id, report_user_id, report_group_id, status, result, error, created_time) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    stmts_.reports = p(
        "SELECT id, task_id, report_user_id, report_group_id, status, result, error, created_time, acked_time "
        "FROM reports WHERE ?1 = 0 OR acked_time IS NULL ORDER BY id LIMIT ?2");
    stmts_.ack = p("UPDATE reports SET acked_time = ?1 WHERE id = ?2 AND acked_time IS NULL");
    stmts_.prune_tasks = p(
        "DELETE FROM tasks WHERE task_status IN ('done', 'failed', 'cancelled') AND updated_time < ?1");
    stmts_.prune_reports = p("DELETE FROM reports WHERE acked_time IS NOT NULL AND acked_time < ?1");
    stmts_.counts = p("SELECT task_status, count(*) FROM tasks GROUP BY task_status");
    stmts_.unacked = p("SELECT count(*) FROM reports WHERE acked_time IS NULL");
  }

  // One run's outcome; the caller holds mu_ and an open transaction. One UPDATE, no read: the
  // fields the next state depends on (attempts, max_attempts, repeat_every) cannot change while
  // the row is running under our lease, so the claimed copy is current; exec_time can (an
  // upsert re-arms a running task) and is compared in the statement itself.
  bool complete_locked(const TaskRecord& claimed, std::string_view owner, const RunResult& outcome, const RetryPolicy& retry) {
    const std::int64_t now = now_ms();
    const std::int64_t slot = to_ms(claimed.exec_time);
    std::optional<std::string> result, error;
    const char* next_status = "done";
    std::int64_t next_exec = slot;
    int next_attempts = 0;
    bool retrying = false;
    std::optional<TaskStatus> report;
    if (outcome.ok) {
      result = outcome.result;
      report = TaskStatus::done;
    } else {
      error = outcome.error;
      retrying = outcome.retryable && claimed.attempts < claimed.max_attempts;
      if (retrying) {
        next_status = "waiting";
        next_exec = now + backoff(claimed.attempts, retry);
        next_attempts = claimed.attempts;  // the next claim counts the next attempt
      } else {
        report = TaskStatus::failed;
        next_status = "failed";
      }
    }
    if (claimed.repeat_every && !retrying) {
      next_status = "waiting";  // the series goes on at its next slot, whatever this run's outcome
      next_exec = next_slot(slot, claimed.repeat_every->count(), now);
    }
    StmtScope s(stmts_.finish_run);
    s->bind(1, next_status).bind(2, next_exec).bind(3, next_attempts).bind(4, result).bind(5, error).bind(6, now);
    s->bind(7, claimed.id).bind(8, slot).bind(9, retrying ? 1 : 0).bind(10, owner);
    s->run();
    if (sqlite3_changes(db_) != 1) return false;  // cancelled, recovered or taken over meanwhile
    if (report) write_report_locked(claimed, *report, result, error, now);
    return true;
  }

  void validate_locked(const NewTask& t) {
    store::validate(t);
    StmtScope s(stmts_.json_valid);
    s->bind(1, t.payload);
    if (!s->step() || s->i64(0) != 1) throw std::invalid_argument("payload is not valid JSON");
  }

  std::int64_t insert_locked(const NewTask& t, std::int64_t now) {
    StmtScope s(stmts_.insert);
    s->bind(1, t.creator_id).bind(2, t.group_id).bind(3, t.task_type).bind(4, t.by_plugin).bind(5, t.exec_task);
    s->bind(6, t.payload).bind(7, now).bind(8, t.exec_time ? to_ms(*t.exec_time) : now).bind(9, t.task_level);
    s->bind(10, t.report_user_id).bind(11, t.report_group_id);
    if (t.repeat_every) {
      s->bind(12, static_cast<std::int64_t>(t.repeat_every->count()));
    } else {
      s->bind_null(12);
    }
    s->bind(13, t.max_attempts);
    if (t.unique_key.empty()) {
      s->bind_null(14);
    } else {
      s->bind(14, t.unique_key);
    }
    if (!s->step()) throw StoreError("taskpool store: insert returned no id");
    return s->i64(0);
  }

  std::optional<TaskRecord> get_locked(std::int64_t id) {
    StmtScope s(stmts_.get);
    s->bind(1, id);
    if (!s->step()) return std::nullopt;
    return read_record(*s);
  }

  std::optional<wall_time> next_due_locked() {
    StmtScope s(stmts_.next_due);
    if (!s->step() || s->is_null(0)) return std::nullopt;
    return from_ms(s->i64(0));
  }

  void write_report_locked(const TaskRecord& t, TaskStatus status, const std::optional<std::string>& result,
                           const std::optional<std::string>& error, std::int64_t now) {
    StmtScope s(stmts_.report);
    s->bind(1, t.id).bind(2, report_user(t)).bind(3, report_group(t)).bind(4, to_string(status));
    s->bind(5, result).bind(6, error).bind(7, now).run();
  }

  std::int64_t backoff(int attempts, const RetryPolicy& p) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    return backoff_ms(attempts, p, u(rng_));
  }

  struct Statements {
    Stmt insert, get, list, json_valid, set_cancelled, extend, reschedule, retry, due_ids, claim, renew, finish_run, release,
        recover, next_due, data_version, report, reports, ack, prune_tasks, prune_reports, counts, unacked;
  };

  std::mutex mu_;  // guards db_, stmts_, rng_
  sqlite3* db_ = nullptr;
  Statements stmts_;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace
}  // namespace store

std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path, const SqliteOptions& opts) {
  return std::make_unique<store::SqliteTaskStore>(path, opts);
}

}  // namespace taskpool
