// src/store/sqlite_store.cpp — TaskStore on SQLite. Schema and invariants: docs/schema.md.
//
// Design note (on-disk schema, recovery).
//  - Identity: PRAGMA application_id = 0x54504F4C ("TPOL") marks a taskpool database;
//    PRAGMA user_version is the schema version. Opening reads both (and whether any table
//    exists) in one read transaction, so a file another process is creating right now is never
//    mistaken for a foreign database; another application's database, or a newer schema, is
//    refused without writing anything. Creation and migrations run in one BEGIN IMMEDIATE
//    transaction that re-reads the three values under the write lock, so of many processes
//    opening a new file exactly one creates it. Lock contention while opening (a creator
//    holding the lock, the WAL switch) is retried until the busy timeout.
//  - Journal: WAL, synchronous=NORMAL: a committed transaction survives the process being
//    killed at any moment (SIGKILL) and the file is never corrupted; only an OS crash or power
//    loss can drop the last commits. Writes use BEGIN IMMEDIATE (the write lock up front, so two
//    writers never deadlock on lock upgrade) and a busy timeout.
//  - Ownership of a run (fencing): claim_due flips waiting -> running, writes lease_owner and
//    lease_until and bumps claim_token in one UPDATE ... RETURNING. start, renew, complete and
//    release act only while the row is running under the same claim_token, so a run that was
//    cancelled, retried and claimed again (by anyone, itself included) cannot touch the new
//    run's row. A cancelled run's lease stays on the row until that run acknowledges its end
//    (complete/release with its token) or the lease is recovered; a row with a lease is not
//    claimable, so a retry never starts a second run beside an ending one.
//  - Attempts are counted when a run starts (start_runs), not at the claim: claimed rows that
//    wait in the dispatcher's queue show no attempt, and a row cancelled while queued is not
//    started. The count of the current occurrence stays visible after it ends.
//  - Repeating tasks: exec_time is the planned grid slot of the next run. complete() moves it to
//    the first grid point after now (slot + k * repeat_every); a failed run retried with backoff
//    keeps its slot in planned_time, so retries never move the grid.
//  - Upsert: a partial unique index on unique_key over waiting/running rows makes "add or update
//    the live task with this key" one atomic statement, across threads and processes. An upsert
//    that changes exec_time or payload bumps `revision`; a run that ends under a newer revision
//    leaves the task waiting at its new time (the latest upsert wins over retry bookkeeping).
//  - Claims (docs/schema.md, "Fair claims"): levels strictly by priority; within a level the
//    fair order walks the creators (groups) with waiting rows by a skip-scan of a partial index,
//    one earliest claimable row per key per round, from a cursor kept per level; caps skip a
//    spent handler's rows by merging per-handler ranges of tasks_caps. Cost: O(limit) probes.
//  - Debounce: the upsert statement itself clamps exec_time to debounce_start + max_wait, so
//    concurrent re-arms from any process cannot pass the bound; a run's end closes the window.
//  - Change notification: PRAGMA data_version (other connections' commits) plus this
//    connection's change count, and an inotify watch of the database's directory filtered to the
//    database file and its -wal/-journal files, so a waiter sleeps until a commit happens.
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "store/sqlite/sqlite.hpp"
#include "taskpool/detail/thread_annotations.hpp"
#include "store/task_rules.hpp"

namespace taskpool {

namespace store {
namespace {

constexpr std::int64_t kApplicationId = 0x54504F4C;  // "TPOL"

std::int64_t to_ms(wall_time t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
wall_time from_ms(std::int64_t ms) { return wall_time(std::chrono::milliseconds(ms)); }
std::int64_t now_ms() { return to_ms(std::chrono::system_clock::now()); }
const std::int64_t kMaxTimeMs = to_ms(kMaxTime);

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
    // v3: fencing and honest bookkeeping. claim_token is bumped by every claim and checked by
    // every later step of the run (a cancelled-then-retried task can no longer run twice at
    // once); revision is bumped by an upsert that changes what runs or when (the latest upsert
    // wins over a run's retry bookkeeping); planned_time keeps a retried occurrence's planned
    // slot (retries never move a repeating grid); report_on is the per-task report choice.
    // tasks_ending finds the finished rows whose run has not acknowledged its end (a cancelled
    // run), so recovery reads only running rows and those; it stays empty in normal operation, so
    // claims and completions never write it. (SQLite
    // cannot add a CHECK on exec_time's type to an existing table: recovery marks a waiting row
    // whose exec_time is not an in-range integer failed instead.)
    R"sql(
ALTER TABLE tasks ADD COLUMN planned_time INTEGER;
ALTER TABLE tasks ADD COLUMN claim_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN report_on TEXT CHECK (report_on IS NULL OR report_on IN ('always', 'failure', 'never'));
CREATE INDEX tasks_ending ON tasks (lease_owner) WHERE lease_owner IS NOT NULL AND task_status <> 'running';
)sql",
    // v4: schedules people write (#14). cron + tz: a repeating task on a cron schedule in an IANA
    // zone; debounce_ms + max_wait_ms + debounce_start: an upsert re-arms a waiting task to
    // now + debounce but never past debounce_start + max_wait. The two partial indexes are the
    // fair claim's skip-scan: per level, the distinct creators (groups) with waiting rows, and
    // each one's earliest due row, are index probes (docs/schema.md, "Fair claims"); tasks_caps
    // does the same by handler for claims with caps.
    R"sql(
ALTER TABLE tasks ADD COLUMN cron TEXT;
ALTER TABLE tasks ADD COLUMN tz TEXT;
ALTER TABLE tasks ADD COLUMN debounce_ms INTEGER;
ALTER TABLE tasks ADD COLUMN max_wait_ms INTEGER;
ALTER TABLE tasks ADD COLUMN debounce_start INTEGER;
CREATE INDEX tasks_fair_creator ON tasks (task_level, creator_id, exec_time) WHERE task_status = 'waiting';
CREATE INDEX tasks_fair_group ON tasks (task_level, group_id, exec_time) WHERE task_status = 'waiting';
CREATE INDEX tasks_caps ON tasks (task_level, CASE WHEN exec_task = '' THEN task_type ELSE exec_task END, exec_time)
  WHERE task_status = 'waiting';
)sql",
    // v5 [http]: listing by status pages through (task_status, id) index ranges, so a page of a
    // rare status in a large table reads the page, not the table (tasks_due is ordered by level
    // and time, not id); a task's run history and its deletion find its reports by task_id.
    R"sql(
CREATE INDEX tasks_status ON tasks (task_status, id);
CREATE INDEX reports_task ON reports (task_id);
)sql",
    // v6: nodes and the maintenance leader. A node's row is upserted by its heartbeat and deleted
    // by a clean stop; rows older than a reader's max_age are dead and deleted. `leader` holds at
    // most one row (id = 1): the owner leading maintenance until lease_until (ms).
    R"sql(
CREATE TABLE nodes (
  owner      TEXT    PRIMARY KEY,
  host       TEXT    NOT NULL DEFAULT '',
  pid        INTEGER NOT NULL DEFAULT 0,
  threads    INTEGER NOT NULL DEFAULT 0,
  busy       INTEGER NOT NULL DEFAULT 0,
  queued     INTEGER NOT NULL DEFAULT 0,
  in_flight  INTEGER NOT NULL DEFAULT 0,
  paused     INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  started    INTEGER NOT NULL,
  heartbeat  INTEGER NOT NULL
);
CREATE TABLE leader (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  owner       TEXT    NOT NULL,
  lease_until INTEGER NOT NULL,
  since       INTEGER NOT NULL
);
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

constexpr const char* kCols =
    "id, creator_id, group_id, task_type, by_plugin, exec_task, payload, create_time, exec_time, task_status, "
    "task_level, report_user_id, report_group_id, repeat_every, attempts, max_attempts, last_error, result, "
    "unique_key, lease_owner, lease_until, updated_time, planned_time, claim_token, revision, report_on, cron, tz, "
    "debounce_ms, max_wait_ms, debounce_start";

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
  // Another program may have written anything here; never build a time_point that overflows.
  r.exec_time = from_ms(std::clamp<std::int64_t>(s.i64(8), 0, kMaxTimeMs));
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
  if (auto v = s.opt_i64(22)) r.planned_time = from_ms(std::clamp<std::int64_t>(*v, 0, kMaxTimeMs));
  r.claim_token = s.i64(23);
  r.revision = s.i64(24);
  if (auto v = s.opt_text(25)) r.report_on = parse_report_on(*v);
  r.cron = s.opt_text(26).value_or("");
  r.tz = s.opt_text(27).value_or("");
  if (auto v = s.opt_i64(28)) r.debounce = std::chrono::milliseconds(*v);
  if (auto v = s.opt_i64(29)) r.max_wait = std::chrono::milliseconds(*v);
  if (auto v = s.opt_i64(30)) r.debounce_start = from_ms(std::clamp<std::int64_t>(*v, 0, kMaxTimeMs));
  return r;
}

class SqliteTaskStore final : public TaskStore {
 public:
  SqliteTaskStore(const std::string& path, const SqliteOptions& opts) : read_only_(opts.read_only) {
    detail::MutexLock lk(mu_);  // nobody else can see the store yet; held so the helpers' contracts hold
    namespace fs = std::filesystem;
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (!exists && (!opts.create || opts.read_only)) throw StoreError("taskpool store: no database at " + path);
    try {
      open(path, opts, false);
      // A read-only directory cannot hold the -shm/-wal files a WAL reader needs: read the file
      // as immutable instead (no locking; a one-shot reader sees the last checkpointed state).
      if (read_only_) {
        try {
          check_schema(path, opts);
        } catch (const SqliteError& e) {
          const int code = e.code() & 0xff;
          if (code != SQLITE_CANTOPEN && code != SQLITE_READONLY && code != SQLITE_IOERR) throw;
          close_db();
          open(path, opts, true);
          check_schema(path, opts);
        }
      } else {
        retry_busy(opts.busy_timeout, [&]() TP_REQUIRES(mu_) { check_schema(path, opts); });
        retry_busy(opts.busy_timeout, [&]() TP_REQUIRES(mu_) { enable_wal(); });
        exec("PRAGMA synchronous=NORMAL");
      }
      prepare();
      seen_version_ = version_locked();
      watch(path);
    } catch (...) {
      close_db();
      throw;
    }
  }
  ~SqliteTaskStore() override {
    {
      detail::MutexLock lk(mu_);
      close_db();
    }
    if (inotify_fd_ >= 0) ::close(inotify_fd_);
    if (event_fd_ >= 0) ::close(event_fd_);
  }

  std::int64_t add(const NewTask& t) override {
    detail::MutexLock lk(mu_);
    validate_locked(t);
    Tx tx(*this);
    std::int64_t id = insert_locked(t, now_ms());
    tx.commit();
    return id;
  }

  std::vector<std::int64_t> add_batch(const std::vector<NewTask>& ts) override {
    detail::MutexLock lk(mu_);
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
    detail::MutexLock lk(mu_);
    return get_locked(id);
  }

  void scan(const ListQuery& q, const std::function<bool(const TaskRecord&)>& each) override {
    detail::MutexLock lk(mu_);
    StmtScope s(list_stmt_locked(q, false));
    while (s->step())
      if (!each(read_record(*s))) break;
  }

  bool cancel(std::int64_t id) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    if (!cancel_locked(id)) return false;
    tx.commit();
    return true;
  }

  bool remove(std::int64_t id) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope s(stmts_.remove);
    s->bind(1, id).run();
    if (sqlite3_changes(db_) != 1) return false;
    StmtScope r(stmts_.remove_reports);
    r->bind(1, id).run();
    tx.commit();
    return true;
  }

  std::size_t cancel_matching(const ListQuery& q) override { return change_matching(q, true); }
  std::size_t retry_matching(const ListQuery& q) override { return change_matching(q, false); }

  bool extend(std::int64_t id, std::chrono::milliseconds by) override {
    check_duration(by, "extend: the duration");
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope q(stmts_.waiting_time);
    q->bind(1, id);
    if (!q->step()) return false;
    const std::int64_t at = q->i64(0);
    q->reset();
    if (at + by.count() >= kMaxTimeMs) check_time(from_ms(kMaxTimeMs), "extend: the new exec_time");
    set_time_locked(id, at + by.count());
    tx.commit();
    return true;
  }

  bool reschedule(std::int64_t id, wall_time at) override {
    check_time(at, "exec_time");
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope q(stmts_.waiting_time);
    q->bind(1, id);
    if (!q->step()) return false;
    q->reset();
    set_time_locked(id, to_ms(at));
    tx.commit();
    return true;
  }

  bool retry(std::int64_t id) override {
    detail::MutexLock lk(mu_);
    return retry_locked(id);
  }

  std::vector<TaskRecord> claim_due(const ClaimRequest& req) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    Claim c{req, now_ms()};
    for (const auto& cap : req.caps) {
      auto [it, fresh] = c.left.emplace(cap.handler, cap.free);
      if (!fresh) it->second = std::min(it->second, cap.free);  // a handler named twice: the smaller cap
    }
    // Levels strictly by priority, 9 first; within a level the fair order (while the probe
    // budget lasts), then the plain order (docs/schema.md, "Fair claims").
    bool fair = req.fairness != Fairness::none;
    for (int level = kMaxTaskLevel; level >= kMinTaskLevel && !c.full(); --level) {
      c.truncated = false;
      if (fair) fair = claim_fair_locked(c, level);
      // A fair probe that stepped over too many rows of spent handlers leaves the rest of the
      // level to the plain order, which skips them by index.
      if ((!fair || c.truncated) && !c.full()) claim_plain_locked(c, level);
    }
    flip_locked(c);
    if (c.out.empty()) return {};  // nothing written: the transaction rolls back
    tx.commit();
    // RETURNING yields rows in no promised order: restore the claim order.
    std::sort(c.out.begin(), c.out.end(),
              [&](const TaskRecord& a, const TaskRecord& b) { return c.order.at(a.id) < c.order.at(b.id); });
    return std::move(c.out);
  }

  std::vector<bool> start_runs(const std::vector<TaskRecord*>& claims) override {
    return commit({}, RetryPolicy{}, claims).started;
  }

  std::vector<bool> renew_leases(const std::vector<const TaskRecord*>& claims, std::chrono::milliseconds lease) override {
    detail::MutexLock lk(mu_);
    std::vector<bool> out(claims.size(), false);
    if (claims.empty()) return out;
    Tx tx(*this);
    const std::int64_t now = now_ms();
    for (std::size_t i = 0; i < claims.size(); ++i) {
      StmtScope s(stmts_.renew);
      s->bind(1, now + lease.count()).bind(2, now).bind(3, claims[i]->id).bind(4, claims[i]->claim_token);
      s->run();
      out[i] = sqlite3_changes(db_) == 1;
    }
    tx.commit();
    return out;
  }

  std::vector<bool> claims_held(const std::vector<const TaskRecord*>& claims) override {
    detail::MutexLock lk(mu_);
    std::vector<bool> out(claims.size(), false);
    for (std::size_t i = 0; i < claims.size(); ++i) {
      StmtScope s(stmts_.held);
      s->bind(1, claims[i]->id).bind(2, claims[i]->claim_token);
      out[i] = s->step();
    }
    return out;
  }

  CommitResult commit(const std::vector<Completion>& items, const RetryPolicy& retry,
                      const std::vector<TaskRecord*>& start) override {
    detail::MutexLock lk(mu_);
    if (items.empty() && start.empty()) return {};
    Tx tx(*this);
    const std::int64_t now = now_ms();
    // The steps run inside commit_runs, within this call and under mu_ (which the analysis
    // cannot see through the free template).
    return commit_runs(
        items, start, [&](const Completion& c) TP_NO_THREAD_SAFETY_ANALYSIS { return complete_locked(*c.claimed, c.outcome, retry); },
        [&](const TaskRecord& claim) TP_NO_THREAD_SAFETY_ANALYSIS -> std::optional<std::int64_t> {
          // Starting counts the attempt of a claim still held.
          StmtScope s(stmts_.start);
          s->bind(1, now).bind(2, claim.id).bind(3, claim.claim_token);
          if (!s->step()) return std::nullopt;
          return s->i64(0);
        },
        [&] { tx.commit(); });
  }

  bool release(const TaskRecord& claimed, bool started) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    auto row = claim_row_locked(claimed);
    if (!row) return false;
    bool ok = false;
    if (row->running) {
      StmtScope s(stmts_.release);
      s->bind(1, now_ms()).bind(2, started ? 1 : 0).bind(3, claimed.id).run();
      ok = true;
    } else {
      clear_lease_locked(claimed);
    }
    tx.commit();
    return ok;
  }

  std::size_t recover(const std::function<OwnerState(std::string_view)>& owner_state) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    const std::int64_t now = now_ms();
    std::string dead = "[", alive = "[";
    if (owner_state) {
      StmtScope s(stmts_.lease_owners);
      std::vector<std::string> owners;
      while (s->step()) owners.push_back(s->text(0));
      s->reset();
      for (const std::string& o : owners) {
        OwnerState st = owner_state(o);
        if (st == OwnerState::unknown) continue;
        std::string& list = st == OwnerState::dead ? dead : alive;
        if (list.size() > 1) list += ',';
        list += quote_json(o);
      }
    }
    dead += ']';
    alive += ']';
    StmtScope r(stmts_.recover_running);
    r->bind(1, now).bind(2, dead).bind(3, alive).run();
    const auto n = static_cast<std::size_t>(sqlite3_changes(db_));
    StmtScope c(stmts_.recover_ended);
    c->bind(1, now).bind(2, dead).bind(3, alive).run();
    fail_malformed_locked(now);
    tx.commit();
    return n;
  }

  std::optional<wall_time> next_due() override {
    detail::MutexLock lk(mu_);
    return next_due_locked();
  }

  bool wait_for_change(std::chrono::steady_clock::time_point deadline) override {
    const std::uint64_t gen = interrupts_.load();
    // A writer write()s its commit frame to the -wal file (the inotify event) a moment before it
    // publishes the commit in the shared-memory index (mmap: no event), so after an event that
    // shows no new version yet, look again after 1, 2, 4 ... 32 ms.
    int settle = 0;
    for (;;) {
      {
        detail::MutexLock lk(mu_);
        std::uint64_t v = version_locked();
        if (v != seen_version_) {
          seen_version_ = v;
          return true;
        }
      }
      if (interrupts_.load() != gen) return true;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      std::int64_t ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
      if (settle > 0) ms = std::min<std::int64_t>(ms, std::int64_t{1} << (6 - settle--));
      pollfd p[2] = {{event_fd_, POLLIN, 0}, {inotify_fd_, POLLIN, 0}};
      // Without a watch (no inotify, or :memory:) this sleeps until the deadline or interrupt.
      int n = ::poll(p, inotify_fd_ >= 0 ? 2 : 1, static_cast<int>(std::min<std::int64_t>(ms, 3'600'000)));
      if (n <= 0) continue;  // timeout or EINTR: re-check the version and the deadline
      if (p[0].revents & POLLIN) {
        std::uint64_t v;
        [[maybe_unused]] auto r = ::read(event_fd_, &v, sizeof v);
      }
      if (inotify_fd_ >= 0 && (p[1].revents & POLLIN) && drain_inotify()) settle = 6;
    }
  }

  void interrupt_wait() override {
    interrupts_.fetch_add(1);
    std::uint64_t one = 1;
    [[maybe_unused]] auto r = ::write(event_fd_, &one, sizeof one);
  }

  // Each write below runs in BEGIN IMMEDIATE, as every write here does (a plain autocommit write
  // could meet a stale snapshot, SQLITE_BUSY_SNAPSHOT, without waiting for the lock).
  void heartbeat(const NodeInfo& n) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope s(stmts_.heartbeat);
    s->bind(1, n.owner).bind(2, n.host).bind(3, n.pid).bind(4, static_cast<std::int64_t>(n.threads));
    s->bind(5, static_cast<std::int64_t>(n.busy)).bind(6, static_cast<std::int64_t>(n.queued));
    s->bind(7, static_cast<std::int64_t>(n.in_flight)).bind(8, n.paused ? 1 : 0).bind(9, to_ms(n.started)).bind(10, now_ms());
    s->run();
    tx.commit();
  }

  void remove_node(std::string_view owner) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    for (Stmt* st : {&stmts_.remove_node, &stmts_.resign}) {
      StmtScope s(*st);
      s->bind(1, owner).run();
    }
    tx.commit();
  }

  std::vector<NodeInfo> nodes(std::chrono::milliseconds max_age) override {
    detail::MutexLock lk(mu_);
    return live_nodes_locked(now_ms() - max_age.count());
  }

  std::size_t prune_nodes(std::chrono::milliseconds max_age) override {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope d(stmts_.age_out);
    d->bind(1, now_ms() - max_age.count()).run();
    const auto n = static_cast<std::size_t>(sqlite3_changes(db_));
    tx.commit();
    return n;
  }

  bool try_lead(std::string_view owner, std::chrono::milliseconds ttl) override {
    if (ttl.count() <= 0) throw std::invalid_argument("try_lead: ttl must be positive");
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    StmtScope s(stmts_.lead);
    const std::int64_t now = now_ms();
    s->bind(1, owner).bind(2, now).bind(3, now + ttl.count()).run();
    const bool led = sqlite3_changes(db_) == 1;
    tx.commit();
    return led;
  }

  std::vector<Report> reports(bool unacked_only, std::size_t limit) override {
    detail::MutexLock lk(mu_);
    StmtScope s(stmts_.reports);
    s->bind(1, unacked_only ? 1 : 0).bind(2, static_cast<std::int64_t>(limit));
    std::vector<Report> out;
    while (s->step()) out.push_back(read_report(*s));
    return out;
  }

  std::size_t ack_reports(const std::vector<std::int64_t>& ids) override {
    detail::MutexLock lk(mu_);
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
    detail::MutexLock lk(mu_);
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

  std::vector<Report> task_reports(std::int64_t task_id, std::size_t limit) override {
    detail::MutexLock lk(mu_);
    StmtScope s(stmts_.task_reports);
    s->bind(1, task_id).bind(2, static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
    std::vector<Report> out;
    while (s->step()) out.push_back(read_report(*s));
    return out;
  }

  StoreStats stats() override {
    detail::MutexLock lk(mu_);
    StoreStats st;
    StmtScope s(stmts_.counts);
    while (s->step()) count_status(st, s->text(0), s->i64(1));
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
  // Lives only inside a store call that holds mu_ (each member requires it).
  class Tx {
   public:
    explicit Tx(SqliteTaskStore& s, const char* begin = "BEGIN IMMEDIATE") TP_REQUIRES(s.mu_) : s_(s) { s_.exec(begin); }
    // Not annotated: the analysis cannot tie s_ to the store whose lock the constructor required.
    void commit() TP_NO_THREAD_SAFETY_ANALYSIS {
      s_.exec("COMMIT");
      done_ = true;
    }
    ~Tx() TP_NO_THREAD_SAFETY_ANALYSIS {  // as commit(); the caller's lock outlives the Tx
      if (!done_) sqlite3_exec(s_.db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

   private:
    SqliteTaskStore& s_;
    bool done_ = false;
  };

  void open(const std::string& path, const SqliteOptions& opts, bool immutable) TP_REQUIRES(mu_) {
    int flags = (read_only_ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | (opts.create ? SQLITE_OPEN_CREATE : 0)) |
                SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
    // As a URI (so immutable=1 can be said); '?' and '#' in a file name must then be escaped.
    std::string uri = "file:";
    for (char c : path) {
      if (c == '?' || c == '#' || c == '%') {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        uri += buf;
      } else {
        uri += c;
      }
    }
    if (immutable) uri += "?immutable=1";
    int rc = sqlite3_open_v2(uri.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      std::string msg = "taskpool store: cannot open " + path + ": " + (db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc));
      close_db();
      throw StoreError(msg);
    }
    sqlite3_busy_timeout(db_, static_cast<int>(opts.busy_timeout.count()));
    sqlite3_extended_result_codes(db_, 1);
  }

  void close_db() noexcept TP_REQUIRES(mu_) {
    stmts_ = {};
    list_stmts_.clear();
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

  // Runs f, retrying while it fails for a lock held by another process (opening a new file
  // races with its creator and with the WAL switch), until `budget` has passed.
  template <class F>
  void retry_busy(std::chrono::milliseconds budget, F&& f) TP_REQUIRES(mu_) {
    const auto deadline = std::chrono::steady_clock::now() + budget;
    std::minstd_rand rng(static_cast<unsigned>(::getpid()));
    for (int attempt = 0;; ++attempt) {
      try {
        f();
        return;
      } catch (const SqliteError& e) {
        if (!e.busy() || std::chrono::steady_clock::now() >= deadline) throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % (attempt < 5 ? 5 : 50)));
    }
  }

  void exec(const char* sql) TP_REQUIRES(mu_) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string detail = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw SqliteError("taskpool store: " + detail, sqlite3_extended_errcode(db_), detail);
    }
  }
  std::int64_t pragma_int(const char* sql) TP_REQUIRES(mu_) {
    Stmt s(db_, sql);
    return s.step() ? s.i64(0) : 0;
  }

  struct Identity {
    std::int64_t app = 0, version = 0, tables = 0;
  };
  Identity read_identity() TP_REQUIRES(mu_) {
    return {pragma_int("PRAGMA application_id"), pragma_int("PRAGMA user_version"),
            pragma_int("SELECT count(*) FROM sqlite_master")};
  }
  // Throws for a file we must not touch; true when it needs creating or migrating.
  bool judge(const std::string& path, const Identity& id, const SqliteOptions& opts) {
    if (id.app != kApplicationId && !(id.app == 0 && id.tables == 0))
      throw StoreError("taskpool store: " + path + " is not a taskpool database");
    if (id.version > kSchemaVersion)
      throw StoreError("taskpool store: " + path + " has schema version " + std::to_string(id.version) +
                       ", newer than this taskpool (" + std::to_string(kSchemaVersion) + ")");
    if (id.app == kApplicationId && id.version == kSchemaVersion) return false;
    if (id.tables == 0 && (!opts.create || read_only_))
      throw StoreError("taskpool store: no database at " + path + " (the file is empty)");
    if (read_only_)
      throw StoreError("taskpool store: " + path + " has schema version " + std::to_string(id.version) +
                       "; open it once for writing to migrate it to version " + std::to_string(kSchemaVersion));
    return true;
  }

  void check_schema(const std::string& path, const SqliteOptions& opts) TP_REQUIRES(mu_) {
    // The three values in one read transaction: a consistent snapshot, never half a creation.
    Identity id;
    try {
      Tx rd(*this, "BEGIN");
      id = read_identity();
      rd.commit();
    } catch (const SqliteError& e) {
      const int code = e.code() & 0xff;
      if (e.busy() || (read_only_ && (code == SQLITE_CANTOPEN || code == SQLITE_READONLY || code == SQLITE_IOERR))) throw;
      // Reading the header fails here for a file that is not SQLite at all.
      throw SqliteError("taskpool store: " + path + ": " + e.detail(), e.code(), e.detail());
    }
    if (!judge(path, id, opts)) return;
    Tx tx(*this);
    // Re-read under the write lock: another process may have created or migrated it meanwhile.
    id = read_identity();
    if (!judge(path, id, opts)) return;
    if (id.app == 0) {
      exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
      id.version = 0;
    }
    for (std::int64_t v = id.version; v < kSchemaVersion; ++v) exec(kMigrations[v]);
    exec(("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    tx.commit();
  }

  void enable_wal() TP_REQUIRES(mu_) {
    // WAL is persistent in the file: once one process switched it, this is a no-op. While
    // another connection holds a lock the switch answers the old mode: retried as busy.
    Stmt s(db_, "PRAGMA journal_mode=WAL");
    std::string mode = s.step() ? s.text(0) : "";
    if (mode != "wal") {
      if (mode.empty()) throw_sqlite(db_, SQLITE_BUSY, "journal_mode");
      // e.g. a file system without shared memory: stay in the old mode (still correct).
    }
  }

  void watch(const std::string& path) {
    event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (event_fd_ < 0) throw StoreError("taskpool store: eventfd failed");
    if (path.empty() || path == ":memory:") return;
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path abs = fs::absolute(path, ec);
    if (ec) return;
    base_ = abs.filename().string();
    inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (inotify_fd_ < 0) return;  // fall back to the caller's deadline (its poll interval)
    // The directory, not the files: the -wal file comes and goes with the last connection.
    if (::inotify_add_watch(inotify_fd_, abs.parent_path().c_str(), IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      ::close(inotify_fd_);
      inotify_fd_ = -1;
    }
  }

  // Reads pending events; whether any concerns the database (its file, -wal or -journal). The
  // caller re-checks data_version either way, so an unrelated event costs one query.
  bool drain_inotify() {
    alignas(inotify_event) char buf[4096];
    bool relevant = false;
    for (;;) {
      ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
      if (n <= 0) break;
      for (char* p = buf; p < buf + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        std::string_view name = e->len ? std::string_view(e->name) : std::string_view();
        if (name.substr(0, base_.size()) == base_) relevant = true;
        p += sizeof(inotify_event) + e->len;
      }
    }
    return relevant;
  }

  // Moves whenever any connection commits: data_version for the others, total changes for ours.
  std::uint64_t version_locked() TP_REQUIRES(mu_) {
    StmtScope s(stmts_.data_version);
    s->step();
    return static_cast<std::uint64_t>(s->i64(0)) + static_cast<std::uint64_t>(sqlite3_total_changes64(db_));
  }

  void prepare() TP_REQUIRES(mu_) {
    auto p = [&](const std::string& sql) TP_REQUIRES(mu_) { return Stmt(db_, sql); };
    const std::string cols = kCols;
    // The exec_time an upsert gives a live row (see the insert's comment).
    const std::string debounced_time =
        "CASE WHEN excluded.debounce_ms IS NOT NULL AND excluded.max_wait_ms IS NOT NULL AND task_status = 'waiting' "
        "AND debounce_start IS NOT NULL THEN min(excluded.exec_time, debounce_start + excluded.max_wait_ms) "
        "ELSE excluded.exec_time END";
    stmts_.insert = p(
        "INSERT INTO tasks (creator_id, group_id, task_type, by_plugin, exec_task, payload, create_time, exec_time, "
        "task_status, task_level, report_user_id, report_group_id, repeat_every, attempts, max_attempts, unique_key, "
        "updated_time, report_on, cron, tz, debounce_ms, max_wait_ms, debounce_start) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
        "?7, ?8, 'waiting', ?9, ?10, ?11, ?12, 0, ?13, ?14, ?7, ?15, ?16, ?17, ?18, ?19, "
        "CASE WHEN ?18 IS NULL THEN NULL ELSE ?7 END) "
        "ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND task_status IN ('waiting', 'running') "
        // The latest upsert wins: a waiting task starts a new occurrence (no pending retry); a
        // running one gets a new revision, which its run's completion sees. Debounce (one
        // statement, so race-free across processes): a waiting row in a window moves to
        // min(now + debounce, debounce_start + max_wait) and keeps its window; otherwise (a
        // running row, or no window yet) a new window starts now.
        "DO UPDATE SET revision = revision + (exec_time IS NOT (" + debounced_time +
        ") OR payload IS NOT excluded.payload), "
        "attempts = CASE WHEN task_status = 'waiting' THEN 0 ELSE attempts END, "
        "planned_time = CASE WHEN task_status = 'waiting' THEN NULL ELSE planned_time END, "
        "debounce_start = CASE WHEN excluded.debounce_ms IS NULL THEN NULL "
        "WHEN task_status = 'waiting' AND debounce_start IS NOT NULL THEN debounce_start "
        "ELSE excluded.debounce_start END, "
        "exec_time = " + debounced_time + ", payload = excluded.payload, task_level = excluded.task_level, "
        "debounce_ms = excluded.debounce_ms, max_wait_ms = excluded.max_wait_ms, "
        "updated_time = excluded.updated_time RETURNING id");
    stmts_.get = p("SELECT " + cols + " FROM tasks WHERE id = ?1");
    stmts_.remove = p("DELETE FROM tasks WHERE id = ?1 AND task_status <> 'running'");
    stmts_.remove_reports = p("DELETE FROM reports WHERE task_id = ?1");
    stmts_.json_valid = p("SELECT json_valid(?1)");
    // The lease stays: a running task's run acknowledges its end (see the design note).
    stmts_.set_cancelled = p("UPDATE tasks SET task_status = 'cancelled', updated_time = ?1 WHERE id = ?2");
    stmts_.waiting_time = p(
        "SELECT exec_time FROM tasks WHERE id = ?1 AND task_status = 'waiting' AND typeof(exec_time) = 'integer'");
    stmts_.set_time = p("UPDATE tasks SET exec_time = ?1, planned_time = NULL, updated_time = ?2 WHERE id = ?3");
    stmts_.retry = p(
        "UPDATE tasks SET task_status = 'waiting', exec_time = ?1, planned_time = NULL, attempts = 0, last_error = NULL, "
        "updated_time = ?1 WHERE id = ?2 AND task_status IN ('done', 'failed', 'cancelled')");
    // Claiming: the ids are picked in the same transaction, so they are all waiting. (A status
    // test in the UPDATE would lead SQLite to scan the status index instead of the ids.) Only
    // in-range integer times are due (next_due agrees); a row still leased by an ending run
    // waits for it.
    stmts_.due_ids = p(
        "SELECT id FROM tasks WHERE task_status = 'waiting' AND task_level = ?1 AND exec_time BETWEEN 0 AND ?2 "
        "AND lease_owner IS NULL ORDER BY exec_time, id LIMIT ?3");
    // With caps: the plain order row by row, with each row's handler.
    stmts_.due_rows = p(
        "SELECT id, exec_task, task_type FROM tasks WHERE task_status = 'waiting' AND task_level = ?1 AND "
        "exec_time BETWEEN 0 AND ?2 AND lease_owner IS NULL ORDER BY exec_time, id");
    // Caps: the handlers with waiting rows at a level, and one handler's next due row after a
    // (exec_time, id) position, off tasks_caps (the expression must match the index's).
    const std::string handler_expr = "CASE WHEN exec_task = '' THEN task_type ELSE exec_task END";
    const std::string by_handler = " FROM tasks INDEXED BY tasks_caps WHERE task_status = 'waiting' AND task_level = ?1 ";
    stmts_.handler_first = p("SELECT " + handler_expr + by_handler + "ORDER BY " + handler_expr + " LIMIT 1");
    stmts_.handler_next =
        p("SELECT " + handler_expr + by_handler + "AND " + handler_expr + " > ?2 ORDER BY " + handler_expr + " LIMIT 1");
    stmts_.handler_rows = p("SELECT id, exec_time" + by_handler + "AND " + handler_expr +
                            " = ?2 AND exec_time BETWEEN max(0, ?4) AND ?3 AND lease_owner IS NULL AND "
                            "(exec_time > ?4 OR id > ?5) ORDER BY exec_time, id LIMIT 1");
    // Fair claims: a skip-scan over tasks_fair_creator / tasks_fair_group (partial indexes on
    // waiting rows): the next key is one index seek, a key's earliest claimable row another.
    for (int f = 0; f < 2; ++f) {
      const std::string key = f == 0 ? "creator_id" : "group_id";
      const std::string by_key = std::string(" FROM tasks INDEXED BY ") + (f == 0 ? "tasks_fair_creator" : "tasks_fair_group") +
                                 " WHERE task_status = 'waiting' AND task_level = ?1 ";
      stmts_.fair_first[f] = p("SELECT " + key + by_key + "ORDER BY " + key + " LIMIT 1");
      stmts_.fair_next[f] = p("SELECT " + key + by_key + "AND " + key + " > ?2 ORDER BY " + key + " LIMIT 1");
      stmts_.fair_rows[f] = p("SELECT id, exec_task, task_type" + by_key + "AND " + key +
                              " = ?2 AND exec_time BETWEEN 0 AND ?3 AND lease_owner IS NULL ORDER BY exec_time, id");
    }
    stmts_.claim = p(
        "UPDATE tasks SET task_status = 'running', lease_owner = ?1, lease_until = ?2, claim_token = claim_token + 1, "
        "updated_time = ?3 WHERE id IN (SELECT value FROM json_each(?4)) RETURNING " + cols);
    // Starts and renewals leave updated_time alone: they would rewrite the tasks_updated index
    // for every run. (Their callers still bind the time as ?1 / ?2: an unused number is allowed.)
    stmts_.start = p(
        "UPDATE tasks SET attempts = attempts + 1 WHERE id = ?2 AND claim_token = ?3 AND task_status = 'running' "
        "RETURNING attempts");
    stmts_.renew = p("UPDATE tasks SET lease_until = ?1 WHERE id = ?3 AND claim_token = ?4 AND task_status = 'running'");
    stmts_.held = p("SELECT 1 FROM tasks WHERE id = ?1 AND claim_token = ?2 AND task_status = 'running'");
    stmts_.claim_row = p(
        "SELECT task_status = 'running', lease_owner IS NOT NULL, revision, exec_time FROM tasks "
        "WHERE id = ?1 AND claim_token = ?2");
    stmts_.clear_lease = p(
        "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE id = ?1 AND claim_token = ?2");
    stmts_.finish_run = p(
        "UPDATE tasks SET task_status = ?1, exec_time = ?2, attempts = ?3, result = coalesce(?4, result), "
        "last_error = ?5, planned_time = ?6, lease_owner = NULL, lease_until = NULL, updated_time = ?7, "
        "debounce_start = CASE WHEN ?9 THEN NULL ELSE debounce_start END WHERE id = ?8");
    stmts_.release = p(
        "UPDATE tasks SET task_status = 'waiting', attempts = max(attempts - ?2, 0), lease_owner = NULL, "
        "lease_until = NULL, updated_time = ?1 WHERE id = ?3");
    stmts_.lease_owners = p(
        "SELECT lease_owner FROM tasks WHERE task_status = 'running' AND lease_owner IS NOT NULL UNION "
        "SELECT lease_owner FROM tasks WHERE lease_owner IS NOT NULL AND task_status <> 'running'");
    const std::string recoverable =
        "lease_owner IS NOT NULL AND (lease_owner IN (SELECT value FROM json_each(?2)) OR "
        "(lease_until < ?1 AND lease_owner NOT IN (SELECT value FROM json_each(?3))))";
    stmts_.recover_running = p(
        "UPDATE tasks SET task_status = 'waiting', lease_owner = NULL, lease_until = NULL, updated_time = ?1 "
        "WHERE task_status = 'running' AND " + recoverable);
    stmts_.recover_ended = p(
        "UPDATE tasks SET lease_owner = NULL, lease_until = NULL WHERE task_status <> 'running' AND " + recoverable);
    // (Both use an index: tasks_due for running rows, tasks_ending for the others.)
    // Text sorts after every number, so `>= max` finds text and blobs too; one index range per
    // level and bound.
    const std::string malformed_set =
        "UPDATE tasks SET task_status = 'failed', last_error = 'exec_time ' || quote(exec_time) || "
        "' is not a time taskpool can run: an INTEGER of milliseconds since 1970-01-01 UTC before 2200-01-01 was "
        "expected', updated_time = ?1 WHERE id IN (SELECT id FROM tasks WHERE task_status = 'waiting' AND "
        "task_level IN (0, 1, 2, 3, 4, 5, 6, 7, 8, 9) AND ";
    stmts_.fail_late = p(malformed_set + "exec_time >= ?2) RETURNING " + cols);
    stmts_.fail_early = p(malformed_set + "exec_time < 0) RETURNING " + cols);
    // The earliest claimable time of each level is one index walk that stops at its first row.
    stmts_.next_due = p(
        "WITH levels(v) AS (VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9)) "
        "SELECT min((SELECT exec_time FROM tasks WHERE task_status = 'waiting' AND task_level = v AND "
        "exec_time BETWEEN 0 AND ?1 AND lease_owner IS NULL ORDER BY exec_time LIMIT 1)) FROM levels");
    stmts_.data_version = p("PRAGMA data_version");
    stmts_.report = p(
        "INSERT INTO reports (task_id, report_user_id, report_group_id, status, result, error, created_time) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    stmts_.reports = p(
        "SELECT id, task_id, report_user_id, report_group_id, status, result, error, created_time, acked_time "
        "FROM reports WHERE ?1 = 0 OR acked_time IS NULL ORDER BY id LIMIT ?2");
    stmts_.task_reports = p(
        "SELECT id, task_id, report_user_id, report_group_id, status, result, error, created_time, acked_time "
        "FROM reports WHERE task_id = ?1 ORDER BY id DESC LIMIT ?2");
    stmts_.ack = p("UPDATE reports SET acked_time = ?1 WHERE id = ?2 AND acked_time IS NULL");
    stmts_.prune_tasks = p(
        "DELETE FROM tasks WHERE task_status IN ('done', 'failed', 'cancelled') AND updated_time < ?1");
    stmts_.prune_reports = p("DELETE FROM reports WHERE acked_time IS NOT NULL AND acked_time < ?1");
    stmts_.counts = p("SELECT task_status, count(*) FROM tasks GROUP BY task_status");
    stmts_.heartbeat = p(
        "INSERT INTO nodes (owner, host, pid, threads, busy, queued, in_flight, paused, started, heartbeat) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (owner) DO UPDATE SET host = excluded.host, "
        "pid = excluded.pid, threads = excluded.threads, busy = excluded.busy, queued = excluded.queued, "
        "in_flight = excluded.in_flight, paused = excluded.paused, started = excluded.started, heartbeat = excluded.heartbeat");
    stmts_.remove_node = p("DELETE FROM nodes WHERE owner = ?1");
    stmts_.resign = p("DELETE FROM leader WHERE owner = ?1");
    stmts_.age_out = p("DELETE FROM nodes WHERE heartbeat < ?1");
    stmts_.nodes = p(
        "SELECT owner, host, pid, threads, busy, queued, in_flight, paused, started, heartbeat FROM nodes "
        "WHERE heartbeat >= ?1 ORDER BY owner");
    // Takes the row when it is free, expired or already ours; `since` stays while it is renewed.
    stmts_.lead = p(
        "INSERT INTO leader (id, owner, lease_until, since) VALUES (1, ?1, ?3, ?2) ON CONFLICT (id) DO UPDATE SET "
        "owner = excluded.owner, lease_until = excluded.lease_until, "
        "since = CASE WHEN leader.owner = excluded.owner THEN leader.since ELSE excluded.since END "
        "WHERE leader.owner = excluded.owner OR leader.lease_until < ?2");
    stmts_.unacked = p("SELECT count(*) FROM reports WHERE acked_time IS NULL");
  }

  // The statement for a ListQuery's shape (which filters are set, and the order), prepared
  // once per shape and cached, with q's values bound. Only set filters appear in the SQL, so
  // SQLite plans each shape on its own: a status filter walks tasks_status in id order, the
  // others walk the ids; either way a keyset page stops after `limit` matches. `ids_only`
  // selects just the ids (the bulk operations).
  Stmt& list_stmt_locked(const ListQuery& q, bool ids_only) TP_REQUIRES(mu_) {
    unsigned shape = (q.status ? 1u : 0u) | (q.handler.empty() ? 0u : 2u) | (q.creator_id.empty() ? 0u : 4u) |
                     (q.group_id.empty() ? 0u : 8u) | (q.text.empty() ? 0u : 16u) | (q.due_before ? 32u : 0u) |
                     (q.due_after ? 64u : 0u) | (q.after_id > 0 ? 128u : 0u) | (q.before_id > 0 ? 256u : 0u) |
                     (q.newest_first ? 512u : 0u) | (ids_only ? 1024u : 0u);
    auto it = list_stmts_.find(shape);
    if (it == list_stmts_.end()) {
      std::string sql = std::string("SELECT ") + (ids_only ? "id" : kCols) + " FROM tasks WHERE 1";
      if (shape & 1u) sql += " AND task_status = ?1";
      if (shape & 2u) sql += " AND (exec_task = ?2 OR (exec_task = '' AND task_type = ?2))";
      if (shape & 4u) sql += " AND creator_id = ?3";
      if (shape & 8u) sql += " AND group_id = ?4";
      if (shape & 16u)
        sql += " AND (instr(payload, ?5) > 0 OR instr(coalesce(result, ''), ?5) > 0 OR instr(coalesce(last_error, ''), ?5) > 0)";
      if (shape & 32u) sql += " AND exec_time < ?6";
      if (shape & 64u) sql += " AND exec_time >= ?7";
      if (shape & 128u) sql += " AND id > ?8";
      if (shape & 256u) sql += " AND id < ?9";
      sql += (shape & 512u) ? " ORDER BY id DESC LIMIT ?10" : " ORDER BY id LIMIT ?10";
      it = list_stmts_.emplace(shape, Stmt(db_, sql)).first;
    }
    Stmt& s = it->second;
    if (q.status) s.bind(1, to_string(*q.status));
    if (!q.handler.empty()) s.bind(2, q.handler);
    if (!q.creator_id.empty()) s.bind(3, q.creator_id);
    if (!q.group_id.empty()) s.bind(4, q.group_id);
    if (!q.text.empty()) s.bind(5, q.text);
    if (q.due_before) s.bind(6, to_ms(*q.due_before));
    if (q.due_after) s.bind(7, to_ms(*q.due_after));
    if (q.after_id > 0) s.bind(8, q.after_id);
    if (q.before_id > 0) s.bind(9, q.before_id);
    s.bind(10, static_cast<std::int64_t>(std::min<std::size_t>(q.limit, INT64_MAX)));
    return s;
  }

  // cancel (or retry) every row q selects, in one transaction; returns how many changed.
  std::size_t change_matching(const ListQuery& q, bool cancel) {
    detail::MutexLock lk(mu_);
    Tx tx(*this);
    std::vector<std::int64_t> ids;
    {
      StmtScope s(list_stmt_locked(q, true));
      while (s->step()) ids.push_back(s->i64(0));
    }
    std::size_t n = 0;
    for (std::int64_t id : ids) n += cancel ? cancel_locked(id) : retry_locked(id);
    tx.commit();
    return n;
  }

  // cancel() inside the caller's transaction.
  bool cancel_locked(std::int64_t id) TP_REQUIRES(mu_) {
    auto cur = get_locked(id);
    if (!cur || (cur->status != TaskStatus::waiting && cur->status != TaskStatus::running)) return false;
    std::int64_t now = now_ms();
    StmtScope s(stmts_.set_cancelled);
    s->bind(1, now).bind(2, id).run();
    if (writes_report(*cur, TaskStatus::cancelled))
      write_report_locked(*cur, TaskStatus::cancelled, std::nullopt, std::string("cancelled"), now);
    return true;
  }

  // retry() alone or inside the caller's transaction (a refused row changes nothing).
  bool retry_locked(std::int64_t id) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.retry);
    std::int64_t now = now_ms();
    s->bind(1, now).bind(2, id);
    try {
      s->run();
    } catch (const StoreError&) {
      // The unique key is live again in another task: report it as "cannot retry". (A
      // constraint error undoes only its own statement, so a transaction around it goes on.)
      if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE) return false;
      throw;
    }
    return sqlite3_changes(db_) == 1;
  }

  static Report read_report(const Stmt& s) {
    Report r;
    r.id = s.i64(0);
    r.task_id = s.i64(1);
    r.report_user_id = s.text(2);
    r.report_group_id = s.text(3);
    r.status = parse_task_status(s.text(4)).value_or(TaskStatus::done);
    r.result = s.opt_text(5);
    r.error = s.opt_text(6);
    r.created_time = from_ms(s.i64(7));
    if (auto a = s.opt_i64(8)) r.acked_time = from_ms(*a);
    return r;
  }

  std::vector<NodeInfo> live_nodes_locked(std::int64_t cutoff) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.nodes);
    s->bind(1, cutoff);
    std::vector<NodeInfo> out;
    while (s->step()) {
      NodeInfo n;
      n.owner = s->text(0);
      n.host = s->text(1);
      n.pid = s->i64(2);
      n.threads = static_cast<std::size_t>(s->i64(3));
      n.busy = static_cast<std::size_t>(s->i64(4));
      n.queued = static_cast<std::size_t>(s->i64(5));
      n.in_flight = static_cast<std::size_t>(s->i64(6));
      n.paused = s->i64(7) != 0;
      n.started = from_ms(std::clamp<std::int64_t>(s->i64(8), 0, kMaxTimeMs));
      n.heartbeat = from_ms(std::clamp<std::int64_t>(s->i64(9), 0, kMaxTimeMs));
      out.push_back(std::move(n));
    }
    return out;
  }

  struct ClaimRow {
    bool running, leased;
    std::int64_t revision, exec_time;
  };
  // The row as `claimed` left it, or nullopt when another claim has been made since.
  std::optional<ClaimRow> claim_row_locked(const TaskRecord& claimed) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.claim_row);
    s->bind(1, claimed.id).bind(2, claimed.claim_token);
    if (!s->step()) return std::nullopt;
    return ClaimRow{s->i64(0) != 0, s->i64(1) != 0, s->i64(2), s->i64(3)};
  }
  void clear_lease_locked(const TaskRecord& claimed) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.clear_lease);
    s->bind(1, claimed.id).bind(2, claimed.claim_token).run();
  }

  // One run's outcome; the caller holds mu_ and an open transaction. The fields the next state
  // depends on (attempts, max_attempts, repeat_every) cannot change while the row is running
  // under our claim, so the claimed copy is current; what an upsert may change meanwhile
  // (exec_time, payload) is detected by the revision.
  bool complete_locked(const TaskRecord& claimed, const RunResult& outcome, const RetryPolicy& retry) TP_REQUIRES(mu_) {
    auto row = claim_row_locked(claimed);
    if (!row) return false;
    if (!row->running) {  // cancelled while running: acknowledge the end, record nothing
      if (row->leased) clear_lease_locked(claimed);
      return false;
    }
    const std::int64_t now = now_ms();
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    const RunEnd e = end_of_run(claimed, outcome, retry, u(rng_), row->revision != claimed.revision, row->exec_time, now);
    StmtScope s(stmts_.finish_run);
    s->bind(1, to_string(e.status)).bind(2, e.exec_time).bind(3, e.attempts).bind(4, e.result).bind(5, e.error);
    s->bind(6, e.planned_time).bind(7, now).bind(8, claimed.id);
    s->bind(9, e.ends_debounce_window ? 1 : 0);
    s->run();
    if (e.report && writes_report(claimed, *e.report)) write_report_locked(claimed, *e.report, e.result, e.error, now);
    return true;
  }

  // One claim in progress (claim_due): what is picked, what each capped handler may still take.
  struct Claim {
    const ClaimRequest& req;
    std::int64_t now;
    std::vector<std::int64_t> ids;          // picked, not yet flipped to running
    std::vector<TaskRecord> out;            // flipped
    std::map<std::int64_t, std::size_t> order;  // id -> position in the claim order
    std::map<std::string, std::size_t, std::less<>> left;  // capped handler -> rows it may still take
    std::size_t misses = 0;                 // fair probes that took nothing
    bool truncated = false;                 // a fair probe gave up on rows of spent handlers
    std::size_t picked() const { return out.size() + ids.size(); }
    bool full() const { return picked() >= req.limit; }
    bool allowed(std::string_view handler) const {
      auto it = left.find(handler);
      return it == left.end() || it->second > 0;
    }
    void pick(std::int64_t id, std::string_view handler) {
      if (auto it = left.find(handler); it != left.end()) --it->second;
      order.emplace(id, order.size());
      ids.push_back(id);
    }
  };
  // Beyond this many probes that take nothing (keys with waiting but no claimable rows), a claim
  // goes on in the plain order: its cost stays O(limit + kFairSlack) probes.
  static constexpr std::size_t kFairSlack = 32;
  // With caps, a fair probe steps over at most this many rows of spent handlers.
  static constexpr std::size_t kProbeSkips = 32;
  // With caps, the plain order merges per-handler index ranges for up to this many handlers per
  // level (more: it steps over the spent handlers' rows).
  static constexpr std::size_t kMaxHandlers = 256;

  static std::string_view row_handler(const Stmt& s, int exec_task_col) {
    std::string_view exec = s.text_view(exec_task_col);
    return exec.empty() ? s.text_view(exec_task_col + 1) : exec;
  }

  // Flips the picked rows to running under this claim, in one UPDATE ... RETURNING.
  void flip_locked(Claim& c) TP_REQUIRES(mu_) {
    if (c.ids.empty()) return;
    std::string ids = "[";
    for (std::size_t i = 0; i < c.ids.size(); ++i) ids += (i ? "," : "") + std::to_string(c.ids[i]);
    ids += ']';
    StmtScope s(stmts_.claim);
    s->bind(1, c.req.owner).bind(2, c.now + c.req.lease.count()).bind(3, c.now).bind(4, ids);
    while (s->step()) {
      c.out.push_back(read_record(*s));
      TaskRecord& r = c.out.back();
      if (r.planned_time) r.exec_time = *r.planned_time;  // the run's planned time, not the retry's
    }
    c.ids.clear();
  }

  // The plain order of one level: exec_time, id, straight off tasks_due.
  void claim_plain_locked(Claim& c, int level) TP_REQUIRES(mu_) {
    if (c.left.empty()) {
      StmtScope s(stmts_.due_ids);
      s->bind(1, level).bind(2, c.now).bind(3, static_cast<std::int64_t>(c.req.limit - c.picked()));
      while (s->step()) c.pick(s->i64(0), {});
      return;
    }
    // With caps: the handlers with waiting rows at this level (a skip-scan of tasks_caps), then a
    // merge of the allowed handlers' due rows in (exec_time, id) order, each handler's range read
    // straight off tasks_caps: a spent handler's backlog is never read.
    std::vector<std::string> handlers;
    for (std::optional<std::string> at;;) {
      StmtScope s(at ? stmts_.handler_next : stmts_.handler_first);
      s->bind(1, level);
      if (at) s->bind(2, *at);
      if (!s->step()) break;
      at = s->text(0);
      if (handlers.size() == kMaxHandlers) return claim_stepping_locked(c, level);
      handlers.push_back(*at);
    }
    struct Head {
      std::int64_t exec_time, id;
      std::size_t handler;
    };
    auto next_of = [&](std::size_t h, std::int64_t after_time, std::int64_t after_id) TP_REQUIRES(mu_) -> std::optional<Head> {
      StmtScope s(stmts_.handler_rows);
      s->bind(1, level).bind(2, handlers[h]).bind(3, c.now).bind(4, after_time).bind(5, after_id);
      if (!s->step()) return std::nullopt;
      return Head{s->i64(1), s->i64(0), h};
    };
    std::vector<Head> heads;
    for (std::size_t h = 0; h < handlers.size(); ++h)
      if (c.allowed(handlers[h]))
        if (auto head = next_of(h, -1, 0)) heads.push_back(*head);
    while (!c.full() && !heads.empty()) {
      auto it = std::min_element(heads.begin(), heads.end(), [](const Head& a, const Head& b) {
        return a.exec_time != b.exec_time ? a.exec_time < b.exec_time : a.id < b.id;
      });
      const Head h = *it;
      c.pick(h.id, handlers[h.handler]);
      auto next = c.allowed(handlers[h.handler]) ? next_of(h.handler, h.exec_time, h.id) : std::nullopt;
      if (next) *it = *next;
      else heads.erase(it);
    }
  }

  // The plain order with caps for a level with very many handlers: rows of a handler whose cap
  // is spent are stepped over.
  void claim_stepping_locked(Claim& c, int level) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.due_rows);
    s->bind(1, level).bind(2, c.now);
    while (!c.full() && s->step()) {
      std::string_view h = row_handler(*s, 1);
      if (c.allowed(h)) c.pick(s->i64(0), h);
    }
  }

  // Takes up to `n` rows of one key (creator or group) at `level`, earliest due first; how many.
  std::size_t take_key_locked(Claim& c, int f, int level, const std::string& key, std::size_t n) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.fair_rows[f]);
    s->bind(1, level).bind(2, key).bind(3, c.now);
    std::size_t took = 0, skipped = 0;
    while (took < n && s->step()) {
      std::string_view h = row_handler(*s, 1);
      if (!c.allowed(h)) {
        if (++skipped > kProbeSkips) {
          c.truncated = true;
          break;
        }
        continue;
      }
      c.pick(s->i64(0), h);
      ++took;
    }
    return took;
  }

  // The next key (creator or group) with waiting rows at `level` after `after` (none: the first).
  std::optional<std::string> next_key_locked(int f, int level, const std::optional<std::string>& after) TP_REQUIRES(mu_) {
    StmtScope s(after ? stmts_.fair_next[f] : stmts_.fair_first[f]);
    s->bind(1, level);
    if (after) s->bind(2, *after);
    if (!s->step()) return std::nullopt;
    return s->text(0);
  }

  // The fair order of one level: rounds over the keys with waiting rows, in key order starting
  // after the level's cursor and wrapping; each round takes every key's earliest claimable row.
  // A round in which only one key gave a row ends the level with the rest from that key. False
  // when the probe budget ran out (the caller goes on in the plain order).
  bool claim_fair_locked(Claim& c, int level) TP_REQUIRES(mu_) {
    const int f = c.req.fairness == Fairness::group ? 1 : 0;
    std::optional<std::string>& cursor = fair_cursor_[f][level];
    while (!c.full()) {
      std::vector<std::string> gave;  // keys that gave a row this round
      bool out_of_budget = false;
      fair_round(
          cursor, [&](const std::optional<std::string>& after) TP_NO_THREAD_SAFETY_ANALYSIS { return next_key_locked(f, level, after); },
          [&](const std::string& key) TP_NO_THREAD_SAFETY_ANALYSIS {
            if (take_key_locked(c, f, level, key, 1) == 1) {
              gave.push_back(key);
              return !c.full();
            }
            out_of_budget = ++c.misses > c.req.limit + kFairSlack;
            return !out_of_budget;
          });
      if (out_of_budget) {
        flip_locked(c);
        return false;
      }
      flip_locked(c);  // taken rows leave the index: the next round's keys are those with rows left
      if (gave.empty() || c.full()) break;
      if (gave.size() == 1) {  // no other key has a claimable row: the rest comes from this one
        take_key_locked(c, f, level, gave[0], c.req.limit - c.picked());
        flip_locked(c);
        break;
      }
    }
    return true;
  }

  void fail_malformed_locked(std::int64_t now) TP_REQUIRES(mu_) {
    for (Stmt* st : {&stmts_.fail_late, &stmts_.fail_early}) {
      StmtScope s(*st);
      s->bind(1, now);
      if (st == &stmts_.fail_late) s->bind(2, kMaxTimeMs);
      std::vector<TaskRecord> failed;
      while (s->step()) failed.push_back(read_record(*s));
      s->reset();
      for (const TaskRecord& t : failed)
        if (writes_report(t, TaskStatus::failed)) write_report_locked(t, TaskStatus::failed, std::nullopt, t.last_error, now);
    }
  }

  void set_time_locked(std::int64_t id, std::int64_t at) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.set_time);
    s->bind(1, at).bind(2, now_ms()).bind(3, id).run();
  }

  void validate_locked(const NewTask& t) TP_REQUIRES(mu_) {
    store::validate(t);
    if (t.exec_time) check_time(*t.exec_time, "exec_time");
    if (t.repeat_every) check_duration(*t.repeat_every, "repeat_every");
    StmtScope s(stmts_.json_valid);
    s->bind(1, t.payload);
    if (!s->step() || s->i64(0) != 1) throw std::invalid_argument("payload is not valid JSON");
  }

  std::int64_t insert_locked(const NewTask& t, std::int64_t now) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.insert);
    s->bind(1, t.creator_id).bind(2, t.group_id).bind(3, t.task_type).bind(4, t.by_plugin).bind(5, t.exec_task);
    // debounce: now + debounce (validate refused an exec_time beside it); a cron task: its next
    // instant after now; else exec_time or now.
    std::int64_t exec = t.exec_time ? to_ms(*t.exec_time) : now;
    if (t.debounce) exec = now + t.debounce->count();
    else if (!t.cron.empty() && !t.exec_time) exec = std::min(to_ms(first_occurrence(t.cron, t.tz, from_ms(now))), kMaxTimeMs - 1);
    s->bind(6, t.payload).bind(7, now).bind(8, exec).bind(9, t.task_level);
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
    if (t.report_on) {
      s->bind(15, to_string(*t.report_on));
    } else {
      s->bind_null(15);
    }
    if (t.cron.empty()) {
      s->bind_null(16).bind_null(17);
    } else {
      s->bind(16, t.cron).bind(17, t.tz);
    }
    s->bind(18, t.debounce ? std::optional(static_cast<std::int64_t>(t.debounce->count())) : std::nullopt);
    s->bind(19, t.max_wait ? std::optional(static_cast<std::int64_t>(t.max_wait->count())) : std::nullopt);
    if (!s->step()) throw StoreError("taskpool store: insert returned no id");
    return s->i64(0);
  }

  std::optional<TaskRecord> get_locked(std::int64_t id) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.get);
    s->bind(1, id);
    if (!s->step()) return std::nullopt;
    return read_record(*s);
  }

  std::optional<wall_time> next_due_locked() TP_REQUIRES(mu_) {
    StmtScope s(stmts_.next_due);
    s->bind(1, kMaxTimeMs - 1);
    if (!s->step() || s->is_null(0)) return std::nullopt;
    return from_ms(s->i64(0));
  }

  void write_report_locked(const TaskRecord& t, TaskStatus status, const std::optional<std::string>& result,
                           const std::optional<std::string>& error, std::int64_t now) TP_REQUIRES(mu_) {
    StmtScope s(stmts_.report);
    s->bind(1, t.id).bind(2, report_user(t)).bind(3, report_group(t)).bind(4, to_string(status));
    s->bind(5, result).bind(6, error).bind(7, now).run();
  }

  static std::string quote_json(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += c;
      }
    }
    return out + "\"";
  }

  struct Statements {
    Stmt insert, get, remove, remove_reports, task_reports, json_valid, set_cancelled, waiting_time, set_time, retry, due_ids, claim, start, renew, held,
        claim_row, clear_lease, finish_run, release, lease_owners, recover_running, recover_ended, fail_late, fail_early,
        next_due, data_version, report, reports, ack, prune_tasks, prune_reports, counts, unacked, due_rows, heartbeat,
        remove_node, resign, age_out, nodes, lead;
    Stmt fair_first[2], fair_next[2], fair_rows[2];  // [0]: by creator_id, [1]: by group_id
    Stmt handler_first, handler_next, handler_rows;
  };

  const bool read_only_;
  detail::Mutex mu_;
  sqlite3* db_ TP_GUARDED_BY(mu_) = nullptr;
  Statements stmts_ TP_GUARDED_BY(mu_);
  std::map<unsigned, Stmt> list_stmts_ TP_GUARDED_BY(mu_);  // list_stmt_locked's cache, by query shape
  std::mt19937_64 rng_ TP_GUARDED_BY(mu_){std::random_device{}()};
  std::uint64_t seen_version_ TP_GUARDED_BY(mu_) = 0;
  // Fair claims: per fairness (creator, group) and level, the key the last claim visited; the
  // next claim's first round starts after it.
  std::optional<std::string> fair_cursor_[2][kMaxTaskLevel + 1] TP_GUARDED_BY(mu_);  // the version wait_for_change last reported
  // Set once in the constructor, then only read; the fds are used without mu_ (wait_for_change
  // sleeps in poll without holding the store's lock).
  int inotify_fd_ = -1, event_fd_ = -1;
  std::string base_;  // the database's file name: inotify events for other files are noise
  std::atomic<std::uint64_t> interrupts_{0};  // bumped by interrupt_wait
};

}  // namespace
}  // namespace store

std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path, const SqliteOptions& opts) {
  return std::make_unique<store::SqliteTaskStore>(path, opts);
}

}  // namespace taskpool
