// src/store/dispatcher.cpp — see taskpool/dispatcher.hpp.
//
// Design note. One claim-loop thread per Dispatcher; runs execute on the ThreadPool. mu guards
// the handler map, the in-flight map, the queues of starts and outcomes, and the flags; store
// calls are made without holding it.
//  - A claim is "in flight" from claim_due until its outcome is recorded (or it is released).
//    In-flight state is keyed by the claim (task id, fencing token), never by the task id alone:
//    after a cancel and a retry the same task can be claimed again while the old run is still
//    ending, and the two must not share an entry.
//  - The loop claims about what can start soon: the pool's threads plus `prefetch`, minus the
//    claims that still occupy a worker, so a second daemon gets its share of the work. While
//    more than one claim per worker waits, it claims only once a quarter of that window is free
//    (claim_room_locked): each commit frees a few slots, and a claim per commit cost a claim's
//    fixed statements for a handful of rows (a server round trip each on PostgreSQL).
//  - A run starts through start_runs, which counts the attempt and refuses a claim cancelled or
//    taken over while it was queued: such a run never starts. To keep a run at one commit, the
//    thread recording outcomes starts, in the same transaction, as many queued claims as runs it
//    records (each freed a worker that takes the next claim); a run started so skips its own
//    start; one that finds none starts through a group start (runs reaching workers together
//    share a transaction).
//  - The loop sleeps in the store's wait_for_change (woken by any process's commit, or by
//    interrupt_wait from wake()/stop()/a recorded outcome). After a change it checks its claims
//    (at most every kCheckEvery), so a cancel reaches its run within a fraction of a second;
//    renewals every lease/3 (steady clock) do the same check.
//  - Outcomes are recorded by group commit. A failed commit keeps them, and the loop retries
//    it with backoff while it keeps renewing the leases, so nothing is lost and nothing reruns.
//  - Nodes: every tick (heartbeat, at most lease/3) the loop upserts this node's row and tries
//    to lead (try_lead, TTL three ticks), then runs a recovery pass: every node takes back the
//    rows of owners provably dead on its own host; only the leader also takes back expired
//    leases (recover() is told "alive" for the owners a non-leader cannot judge). The leader
//    prunes and ages out dead nodes' rows once a minute. stop() deletes the row and resigns.
//  - Claim backoff: a claim that fails waits 100 ms doubling to 5 s; an empty claim while the
//    store still says "due" waits 5 ms doubling to 1 s. The loop never spins on a row it cannot
//    take, and logs a failing store at most once per backoff step.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>
#include <utility>

#include "taskpool/detail/thread_annotations.hpp"
#include "taskpool/dispatcher.hpp"

namespace taskpool {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kCheckEvery{50};  // claims are checked at most this often after a change
constexpr std::size_t kLogLine = 200;    // characters of output or error shown per run
constexpr long long kShortRunMs = 5;     // runs this short let a commit start claims ahead (see flush)
constexpr milliseconds kLeaderChoresEvery{60'000};  // the leader's prune and node age-out
constexpr int kLeaderTtlTicks = 3;                   // a leader silent this many ticks is replaced

std::string read_text(const char* path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Field 22 (starttime) and field 3 (state) of /proc/PID/stat; nullopt if there is no such pid.
struct ProcStat {
  char state;
  std::string start;
};
std::optional<ProcStat> proc_stat(const std::string& pid) {
  std::string s = read_text(("/proc/" + pid + "/stat").c_str());
  auto close = s.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(close + 1));
  std::string field;
  ProcStat st{};
  for (int i = 3; i <= 22 && (in >> field); ++i) {
    if (i == 3) st.state = field.empty() ? '?' : field[0];
    if (i == 22) st.start = field;
  }
  if (st.start.empty()) return std::nullopt;
  return st;
}

// "Same host" must mean "a pid here names the same process": the host name plus a digest of the
// boot id and the pid namespace (two containers sharing a host name and a database file do not
// see each other's pids).
std::string host_key() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string name = host;
  for (char& c : name)
    if (c == ':') c = '_';
  char ns[64] = {};
  [[maybe_unused]] auto n = readlink("/proc/self/ns/pid", ns, sizeof ns - 1);
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : read_text("/proc/sys/kernel/random/boot_id") + ns) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  char digest[16];
  std::snprintf(digest, sizeof digest, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return name + "." + digest;
}

// What we can prove about a lease owner named HOST:PID:STARTTIME:RANDOM.
OwnerState probe_owner(std::string_view owner, const std::string& my_host) {
  auto c3 = owner.rfind(':');
  if (c3 == std::string_view::npos || c3 == 0) return OwnerState::unknown;
  auto c2 = owner.rfind(':', c3 - 1);
  if (c2 == std::string_view::npos || c2 == 0) return OwnerState::unknown;
  auto c1 = owner.rfind(':', c2 - 1);
  if (c1 == std::string_view::npos) return OwnerState::unknown;
  std::string_view host = owner.substr(0, c1), pid = owner.substr(c1 + 1, c2 - c1 - 1), start = owner.substr(c2 + 1, c3 - c2 - 1);
  auto digits = [](std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; };
  if (host != my_host || !digits(pid) || !digits(start)) return OwnerState::unknown;
  auto st = proc_stat(std::string(pid));
  if (!st || st->start != start || st->state == 'Z' || st->state == 'X') return OwnerState::dead;
  return OwnerState::alive;
}

std::string default_owner(const std::string& host) {
  std::string pid = std::to_string(::getpid());
  auto st = proc_stat(pid);
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%08x", rd());
  return host + ":" + pid + ":" + (st ? st->start : "0") + ":" + suffix;
}

// The first non-empty line of `s`, capped.
std::string first_line(std::string_view s) {
  std::size_t b = 0;
  while (b < s.size()) {
    std::size_t e = s.find('\n', b);
    if (e == std::string_view::npos) e = s.size();
    std::string_view line = s.substr(b, e - b);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) {
      std::string out(line.substr(0, kLogLine));
      if (line.size() > kLogLine) out += "...";
      return out;
    }
    b = e + 1;
  }
  return "";
}

// A run's result for the log: an exec result ({"exit_code":N,"output":"..."}) shows the first
// line of its output; other results their first line.
std::string summarize_result(std::string_view text) {
  if (!text.empty() && text.front() == '{') {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_object() && j.contains("output") && j["output"].is_string()) return first_line(j["output"].get<std::string>());
  }
  return first_line(text);
}
// An error for the log: "exec: exit code 3; {json}" shows as "exec: exit code 3: first line".
std::string summarize_error(std::string_view err) {
  auto pos = err.find("; {");
  if (pos == std::string_view::npos) return first_line(err);
  std::string out = summarize_result(err.substr(pos + 2));
  return first_line(err.substr(0, pos)) + (out.empty() ? "" : ": " + out);
}

}  // namespace

struct Dispatcher::Impl : std::enable_shared_from_this<Dispatcher::Impl> {
  using Key = std::pair<std::int64_t, std::int64_t>;  // (task id, claim token)
  struct Flight {
    TaskRecord rec;  // as claimed; attempts set by the start
    std::stop_source stop;
    // Guarded by Impl::mu:
    bool started = false;
    bool revoked = false;        // the claim is gone (cancelled or taken over): not recorded
    bool finished = false;       // its outcome is queued in `done`
    bool shutdown_stop = false;  // stop-requested by stop() after its grace period, while running
    std::optional<bool> start_result;
    bool prestarting = false;  // a flusher is starting it ahead (see flush)
    bool prestarted = false;   // its attempt was counted ahead: its run skips the start
    Key key() const { return {rec.id, rec.claim_token}; }
  };
  struct Done {
    std::shared_ptr<Flight> flight;
    RunResult result;
    long long ms;
    long long late_ms = 0;  // start - planned time (wall clock), for on_run_end
  };

  Impl(TaskStore& s, ThreadPool& p, DispatcherOptions o) : store(s), pool(p), opts(std::move(o)), host(host_key()) {
    if (opts.owner.empty()) opts.owner = default_owner(host);
    if (opts.batch == 0) throw std::invalid_argument("taskpool::Dispatcher: batch must be at least 1");
    if (opts.lease < kMinLease)
      throw std::invalid_argument("taskpool::Dispatcher: lease " + std::to_string(opts.lease.count()) +
                                  "ms is below the minimum of " + std::to_string(kMinLease.count()) + "ms");
    if (opts.poll_interval.count() <= 0) throw std::invalid_argument("taskpool::Dispatcher: poll_interval must be positive");
    for (const auto& [name, n] : opts.limits) {
      if (name.empty()) throw std::invalid_argument("taskpool::Dispatcher: limits: a handler name is empty");
      if (n == 0) throw std::invalid_argument("taskpool::Dispatcher: limits: '" + name + "' must be at least 1");
    }
    if (opts.fairness != Fairness::none && opts.fairness != Fairness::creator && opts.fairness != Fairness::group)
      throw std::invalid_argument("taskpool::Dispatcher: fairness is not none, creator or group");
    if (opts.heartbeat.count() <= 0) throw std::invalid_argument("taskpool::Dispatcher: heartbeat must be positive");
    tick = std::max(milliseconds(1), std::min(opts.heartbeat, opts.lease / 3));
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    hostname = name;
  }

  // The claim for `cap` tasks: fairness, and per limited handler the runs it may still add
  // (its limit minus its claims in flight, started or not).
  ClaimRequest claim_request_locked(std::size_t cap) const TP_REQUIRES(mu) {
    ClaimRequest req{opts.owner, cap, opts.lease, opts.fairness, {}};
    for (const auto& [name, n] : opts.limits) {
      std::size_t busy = 0;
      for (const auto& [k, f] : flights)
        if (f->rec.handler() == name) ++busy;
      req.caps.push_back({name, n > busy ? n - busy : 0});
    }
    return req;
  }

  void log(const std::string& line) {
    if (opts.log) {
      try {
        opts.log(line);
      } catch (...) {
      }
    }
  }

  // What recovery may assume about `o`. Our own leaked rows (a release that failed) are judged
  // by their lease on every node: no other node can (to a same-host one we are provably alive).
  // Other owners: only the leader judges them by their lease; to a non-leader every owner it
  // cannot prove dead counts as alive, so it takes back only provably dead same-host owners' rows.
  OwnerState owner_state(std::string_view o, bool leader) const {
    if (o == opts.owner) return OwnerState::unknown;
    OwnerState s = probe_owner(o, host);
    return s == OwnerState::unknown && !leader ? OwnerState::alive : s;
  }

  NodeInfo node_info_locked() const TP_REQUIRES(mu) {
    NodeInfo n;
    n.owner = opts.owner;
    n.host = hostname;
    n.pid = ::getpid();
    auto ps = pool.stats();
    n.threads = ps.max_threads;
    n.busy = ps.running;
    n.queued = ps.queued;
    n.in_flight = flights.size();
    n.paused = paused;
    n.started = started_at;
    return n;
  }

  // The heartbeat and the leadership attempt of one tick. Store errors are logged once per
  // failing stretch; a node that cannot reach the store does not lead.
  void beat(const NodeInfo& n) {
    bool lead = false;
    try {
      store.heartbeat(n);
      lead = store.try_lead(opts.owner, kLeaderTtlTicks * tick);
      if (beat_failing) log("heartbeat recorded again");
      beat_failing = false;
    } catch (const std::exception& e) {
      if (!beat_failing) log(std::string("heartbeat failed: ") + e.what() + "; retrying every heartbeat");
      beat_failing = true;
    }
    if (lead != leading.load()) {
      log(lead ? "leading maintenance (expired leases, prune, dead nodes)" : "no longer leading maintenance");
      leading.store(lead);
    }
  }

  // The leader's chores, at most once per kLeaderChoresEvery: prune per retention, age out the
  // rows of dead nodes.
  void leader_chores() {
    if (!leading.load() || steady::now() < next_chores) return;
    next_chores = steady::now() + kLeaderChoresEvery;
    try {
      if (opts.retention) {
        std::size_t n = store.prune(*opts.retention);
        if (n > 0) log("pruned " + std::to_string(n) + " finished task(s)");
      }
      if (std::size_t n = store.prune_nodes(std::max(milliseconds(60'000), 10 * tick)))
        log("aged out " + std::to_string(n) + " dead node(s)");
    } catch (const std::exception& e) {
      log(std::string("maintenance failed: ") + e.what() + "; retrying in a minute");
    }
  }

  std::size_t recover(const char* why) {
    try {
      const bool leader = leading.load();
      std::size_t n = store.recover([this, leader](std::string_view o) { return owner_state(o, leader); });
      if (n) log("recovered " + std::to_string(n) + " task(s) " + why);
      rescued += n;
      return n;
    } catch (const std::exception& e) {
      ++store_errors;
      log(std::string("recovery failed: ") + e.what());
      return 0;
    }
  }

  static std::chrono::nanoseconds wall_offset() {
    return std::chrono::system_clock::now().time_since_epoch() - steady::now().time_since_epoch();
  }

  void wake_locked() TP_REQUIRES(mu) {
    woken = true;
    store.interrupt_wait();
  }

  // Claims that may start soon: free workers plus prefetch; never more than `batch` in flight.
  std::size_t capacity_locked() const TP_REQUIRES(mu) {
    if (flights.size() >= opts.batch) return 0;
    const std::size_t occupying = flights.size() - std::min(flights.size(), done.size());
    const std::size_t want = workers + opts.prefetch;
    return want > occupying ? std::min(want - occupying, opts.batch - flights.size()) : 0;
  }

  // capacity_locked(), or 0 while the window is over three quarters full and more than one
  // claim per worker waits (small claims would follow each commit; see the design note).
  std::size_t claim_room_locked() const TP_REQUIRES(mu) {
    const std::size_t cap = capacity_locked();
    const std::size_t occupying = flights.size() - std::min(flights.size(), done.size());
    const std::size_t window = std::min(workers + opts.prefetch, opts.batch);
    return cap * 4 >= window || occupying <= 2 * workers ? cap : 0;
  }

  void loop() {
    auto now = steady::now();
    auto next_renew = now + opts.lease / 3;
    auto next_recover = now + tick, next_beat = now + tick;
    auto next_check = now;
    auto claim_not_before = now, fail_not_before = now;
    milliseconds fail_backoff{100}, empty_backoff{5};
    bool check_pending = false, need_due = true, empty_claim = false;
    wall_time due = wall_time::max();  // earliest claimable exec_time; max: none
    auto last_offset = wall_offset();
    detail::MutexLock lk(mu);
    while (!stopping || !flights.empty() || !done.empty()) {
      now = steady::now();
      // A wall-clock jump makes leases look expired (forward) or long (backward): give every
      // owner a lease period of renewals on the new clock before recovering anything.
      auto offset = wall_offset();
      if (std::chrono::abs(offset - last_offset) > opts.lease / 3) {
        log("the wall clock moved by " + std::to_string(std::chrono::duration_cast<milliseconds>(offset - last_offset).count()) +
            " ms; recovery waits one lease period");
        next_recover = std::max(next_recover, now + opts.lease);
        next_renew = now;
      }
      last_offset = offset;

      const bool claiming = !stopping && !paused;
      const std::size_t cap = claiming ? claim_room_locked() : 0;
      const bool due_now = due <= std::chrono::system_clock::now();
      if (cap > 0 && now >= fail_not_before && (woken || (due_now && now >= claim_not_before))) {
        woken = false;
        const ClaimRequest req = claim_request_locked(cap);
        lk.unlock();
        std::vector<TaskRecord> got;
        bool failed = false;
        try {
          got = store.claim_due(req);
        } catch (const std::exception& e) {
          failed = true;
          log(std::string("claim failed: ") + e.what() + "; retrying in " + std::to_string(fail_backoff.count()) + " ms");
        }
        lk.lock();
        now = steady::now();
        need_due = true;
        if (failed) {
          fail_not_before = now + fail_backoff;
          fail_backoff = std::min(fail_backoff * 2, milliseconds(5000));
        } else {
          fail_backoff = milliseconds(100);
          empty_claim = got.empty();
          if (!got.empty()) empty_backoff = milliseconds(5);
        }
        for (TaskRecord& r : got) launch_locked(std::move(r));
        if (!got.empty() && got.size() == cap) continue;  // more may be due right now
      }
      if (!done.empty() && !flushing && now >= commit_retry_at) {
        flushing = true;
        lk.unlock();
        flush();
        lk.lock();
        now = steady::now();
      }
      if (now >= next_renew || (now >= next_recover && !stopping)) {
        workers = std::max<std::size_t>(1, pool.stats().max_threads);  // follows resize()
        verify_claims_locked(true);
        next_renew = steady::now() + opts.lease / 3;
        check_pending = false;
      }
      if (check_pending && now >= next_check) {
        verify_claims_locked(false);
        next_check = steady::now() + std::min(kCheckEvery, opts.poll_interval);
        check_pending = false;
      }
      if (now >= next_beat && !stopping) {
        auto n = node_info_locked();
        lk.unlock();
        beat(n);
        leader_chores();
        lk.lock();
        next_beat = steady::now() + tick;
      }
      if (now >= next_recover && !stopping) {
        lk.unlock();
        recover("whose runner died or whose lease expired");
        lk.lock();
        next_recover = steady::now() + tick;
        need_due = true;
      }
      // (No room to claim: the look waits until there is; every change meanwhile would cost one.)
      if (need_due && (!claiming || claim_room_locked() > 0)) {
        lk.unlock();
        std::optional<wall_time> d;
        bool ok = true;
        try {
          d = store.next_due();
        } catch (const std::exception& e) {
          ok = false;
          log(std::string("store check failed: ") + e.what());
        }
        lk.lock();
        need_due = false;
        // On an error, look again when the store changes or at the poll interval.
        due = ok && d ? *d : wall_time::max();
        if (empty_claim && due <= std::chrono::system_clock::now()) {
          // The store says "due" but the claim took nothing: never spin on it.
          claim_not_before = steady::now() + empty_backoff;
          empty_backoff = std::min(empty_backoff * 2, milliseconds(1000));
        } else if (empty_claim) {
          empty_backoff = milliseconds(5);
        }
        empty_claim = false;
        continue;  // claim if due now
      }
      if (stopping && flights.empty() && done.empty()) break;
      now = steady::now();
      // Every deadline here must lie ahead of `now` unless the step it stands for runs on the
      // next pass (recovery does not run while stopping: a stale next_recover would spin).
      auto deadline = std::min(now + opts.poll_interval, next_renew);
      if (!stopping) deadline = std::min({deadline, next_recover, next_beat});
      if (check_pending) deadline = std::min(deadline, next_check);
      if (!done.empty() && !flushing) deadline = std::min(deadline, commit_retry_at);
      if (due != wall_time::max() && claiming && claim_room_locked() > 0) {
        auto until = std::chrono::ceil<steady::duration>(due - std::chrono::system_clock::now());
        deadline = std::min(deadline, std::max({now + until, claim_not_before, fail_not_before}));
      }
      if (woken && claim_room_locked() > 0 && claiming) {
        if (now >= fail_not_before) continue;
        deadline = std::min(deadline, fail_not_before);
      }
      if (stopping) deadline = std::min(deadline, now + milliseconds(50));  // outcomes are coming
      if (deadline <= now) continue;
      woken = false;
      lk.unlock();
      bool changed = false;
      try {
        changed = store.wait_for_change(deadline);
      } catch (const std::exception& e) {
        log(std::string("store check failed: ") + e.what());
        std::this_thread::sleep_for(std::min<steady::duration>(deadline - steady::now(), opts.poll_interval));
      }
      lk.lock();
      if (changed) {
        need_due = true;
        if (!flights.empty()) check_pending = true;
      }
    }
  }

  void launch_locked(TaskRecord r) TP_REQUIRES(mu) {
    auto f = std::make_shared<Flight>();
    f->rec = std::move(r);
    flights[f->key()] = f;
    const QueueKey qk{-f->rec.task_level, ++launches};
    queued.emplace(qk, f);
    ++st.claimed;
    try {
      // One pool task per claim, at its level; it runs whichever claim is first in `queued`, so
      // "the claim the next free worker runs" is known exactly (see flush).
      pool.post(Priority{f->rec.task_level}, [self = shared_from_this()] { self->run_next(); });
    } catch (const std::exception& e) {
      flights.erase(f->key());
      queued.erase(qk);
      log("task " + std::to_string(f->rec.id) + " released: " + e.what());
      release(f, false);
    }
  }

  void run_next() {
    std::shared_ptr<Flight> f;
    {
      detail::MutexLock lk(mu);
      if (queued.empty()) return;  // cannot happen: one pool task per queued claim
      f = queued.begin()->second;
      queued.erase(queued.begin());
      ++began;
    }
    run(f);
  }

  void release(const std::shared_ptr<Flight>& f, bool ran) {
    try {
      store.release(f->rec, ran);
    } catch (const std::exception& e) {
      log("task " + std::to_string(f->rec.id) + ": giving the claim back failed (" + e.what() +
          "); it returns to waiting when its lease expires");
    }
  }

  // Gives the claim back, then drops the flight: stop() returns only after the row is released.
  void release_and_forget(const std::shared_ptr<Flight>& f, bool ran) {
    release(f, ran);
    detail::MutexLock lk(mu);
    flights.erase(f->key());
    cv.notify_all();
    wake_locked();
  }

  void revoke_locked(Flight& f, const char* why) TP_REQUIRES(mu) {
    if (f.revoked) return;
    f.revoked = true;
    f.stop.request_stop();
    log("task " + std::to_string(f.rec.id) + " " + f.rec.handler() + ": " + why +
        (f.started ? "; stopping its run" : "; it will not start"));
  }

  std::vector<std::shared_ptr<Flight>> live_flights_locked() const TP_REQUIRES(mu) {
    std::vector<std::shared_ptr<Flight>> fs;
    for (auto& [k, f] : flights)
      if (!f->revoked) fs.push_back(f);
    return fs;
  }

  // Checks that every live claim is still ours (renew: and extends its lease, every lease/3;
  // otherwise read-only, soon after any change to the database). A claim that is gone is
  // revoked: its run is stop-requested, or it never starts.
  void verify_claims_locked(bool renew) TP_REQUIRES(mu) {
    auto fs = live_flights_locked();
    if (fs.empty()) return;
    std::vector<const TaskRecord*> recs;
    for (auto& f : fs) recs.push_back(&f->rec);
    mu.unlock();  // the caller's lock is dropped around the store call and taken back
    std::vector<bool> ok;
    try {
      ok = renew ? store.renew_leases(recs, opts.lease) : store.claims_held(recs);
    } catch (const std::exception& e) {
      // The next renewal tries again.
      if (renew) log(std::string("lease renewal failed: ") + e.what() + "; retrying at the next renewal");
    }
    mu.lock();
    // A run that finished meanwhile may have been recorded already (its row moved on): its
    // commit, not this look, tells whether the claim was still held.
    for (std::size_t i = 0; i < ok.size(); ++i)
      if (!ok[i] && !fs[i]->finished) revoke_locked(*fs[i], "no longer held by this run (cancelled, or claimed again after its lease expired)");
  }

  // Group start: the first run to arrive starts everything queued in one transaction.
  bool start(const std::shared_ptr<Flight>& f) {
    detail::MutexLock lk(mu);
    starts.push_back(f);
    while (!f->start_result) {
      if (starting) {
        start_cv.wait(lk.native());
        continue;
      }
      starting = true;
      std::vector<std::shared_ptr<Flight>> batch;
      batch.swap(starts);
      std::vector<TaskRecord*> recs;
      for (auto& b : batch) recs.push_back(&b->rec);
      lk.unlock();
      std::vector<bool> ok(batch.size(), false);
      try {
        ok = store.start_runs(recs);
      } catch (const std::exception& e) {
        log("starting " + std::to_string(batch.size()) + " run(s) failed: " + e.what() + "; giving them back");
      }
      lk.lock();
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->start_result = ok[i];
      starting = false;
      start_cv.notify_all();
    }
    return *f->start_result;
  }

  void run(const std::shared_ptr<Flight>& f) {
    bool give_back, prestarted;
    {
      detail::MutexLock lk(mu);
      while (f->prestarting) start_cv.wait(lk.native());
      give_back = stopping || f->revoked;
      prestarted = f->prestarted;
    }
    if (give_back) {  // claimed but not started: give it back (or acknowledge the claim's end)
      release_and_forget(f, prestarted);
      return;
    }
    if (!prestarted && !start(f)) {
      log("task " + std::to_string(f->rec.id) + " " + f->rec.handler() +
          " not started: no longer claimed (cancelled or taken over while queued)");
      release_and_forget(f, false);  // acknowledges the claim's end, clearing its lease
      return;
    }
    Handler h;
    {
      detail::MutexLock lk(mu);
      if (stopping && f->stop.stop_requested()) {  // the grace period ended while it was starting
        lk.unlock();
        release_and_forget(f, true);
        return;
      }
      f->started = true;
      auto it = handlers.find(f->rec.handler());
      if (it != handlers.end()) h = it->second;
    }
    RunResult res;
    const long long late_ms =
        std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now() - f->rec.exec_time).count();
    auto t0 = steady::now();
    if (!h) {
      res.ok = false;
      res.retryable = false;
      res.error = "no handler registered for '" + f->rec.handler() + "'";
    } else {
      try {
        res.result = h(TaskContext{f->rec, f->stop.get_token()});
      } catch (const std::exception& e) {
        res.ok = false;
        res.error = e.what();
      } catch (...) {
        res.ok = false;
        res.error = "non-standard exception";
      }
    }
    auto ms = std::chrono::duration_cast<milliseconds>(steady::now() - t0).count();
    // Group commit: queue the outcome; whoever finds no flush running records everything queued
    // in one transaction (one write transaction per task would cap throughput at the commit rate).
    {
      detail::MutexLock lk(mu);
      f->finished = true;
      done.push_back({f, std::move(res), ms, late_ms});
      if (flushing || steady::now() < commit_retry_at) return;  // the loop retries a failed commit
      flushing = true;
    }
    flush();
  }

  void flush() {
    for (;;) {
      std::vector<Done> batch;
      std::vector<std::shared_ptr<Flight>> ahead;  // queued claims this commit starts ahead
      {
        detail::MutexLock lk(mu);
        if (done.empty() || steady::now() < commit_retry_at) {
          flushing = false;
          return;
        }
        batch.swap(done);
        // Each recorded run freed a worker, which takes the next queued claim: start that many
        // (the first in `queued`, the order runs take them) in the same transaction, so a run
        // costs about one commit, not two. Runs of a few milliseconds begin faster than commits
        // complete: then also start as many as began since the previous commit, so the runs
        // taken during this commit find themselves started (no commit of their own). Longer
        // runs get exactly the replacements: a claim still waiting for a worker shows no attempt.
        const bool short_runs =
            std::all_of(batch.begin(), batch.end(), [](const Done& d) { return d.ms < kShortRunMs; });
        const std::size_t lead = batch.size() + (short_runs ? began : 0);
        began = 0;
        if (!stopping)
          for (auto& [k, q] : queued) {
            if (ahead.size() >= lead) break;
            if (q->revoked || q->prestarted || q->prestarting) continue;
            q->prestarting = true;
            ahead.push_back(q);
          }
      }
      std::vector<TaskRecord*> ahead_recs;
      for (auto& a : ahead) ahead_recs.push_back(&a->rec);
      std::vector<TaskStore::Completion> items;
      items.reserve(batch.size());
      for (auto& d : batch) {
        RunResult r = d.result;
        // shutdown_stop is written (under mu) only before `finished` is set, and `finished` was
        // set under mu before this batch was taken: reading it here races with nothing.
        r.interrupted = d.flight->shutdown_stop && !r.ok;
        items.push_back({&d.flight->rec, std::move(r)});
      }
      std::vector<bool> recorded;
      try {
        auto res = store.commit(items, opts.retry, ahead_recs);
        recorded = std::move(res.recorded);
        detail::MutexLock lk(mu);
        for (std::size_t i = 0; i < ahead.size(); ++i) {
          ahead[i]->prestarting = false;
          if (res.started[i]) {
            ahead[i]->prestarted = true;
          } else {
            revoke_locked(*ahead[i], "no longer held by this run (cancelled, or claimed again after its lease expired)");
          }
        }
        start_cv.notify_all();
      } catch (const std::exception& e) {
        ++store_errors;
        detail::MutexLock lk(mu);
        for (auto& a : ahead) a->prestarting = false;  // their runs start themselves
        start_cv.notify_all();
        auto now = steady::now();
        if (!commit_failing_since) commit_failing_since = now;
        if (stopping && now - *commit_failing_since > opts.lease) {
          // Stopping, and the store refused for a whole lease: give up rather than hang. The
          // rows stay running and are recovered (and run again) after this process exits.
          log("giving up recording " + std::to_string(batch.size()) + " outcome(s): " + e.what() +
              "; those tasks run again after recovery");
          for (auto& d : batch) flights.erase(d.flight->key());
          cv.notify_all();
          continue;
        }
        log("recording " + std::to_string(batch.size()) + " outcome(s) failed: " + e.what() + "; keeping them, retrying in " +
            std::to_string(commit_backoff.count()) + " ms");
        done.insert(done.begin(), std::make_move_iterator(batch.begin()), std::make_move_iterator(batch.end()));
        commit_retry_at = now + commit_backoff;
        commit_backoff = std::min(commit_backoff * 2, milliseconds(5000));
        flushing = false;
        wake_locked();  // the loop owns the retry
        return;
      }
      bool retried = false;
      {
        detail::MutexLock lk(mu);
        retried = commit_failing_since.has_value();
        commit_failing_since.reset();
        commit_backoff = milliseconds(50);
      }
      if (retried) log("recorded " + std::to_string(batch.size()) + " outcome(s) after the store recovered");
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& d = batch[i];
        const TaskRecord& r = d.flight->rec;
        if (recorded[i] && opts.on_report) {
          try {
            opts.on_report(r, d.result);
          } catch (...) {
          }
        }
        if (opts.on_run_end) {
          try {
            opts.on_run_end({r, d.result, static_cast<bool>(recorded[i]), milliseconds(d.late_ms), milliseconds(d.ms)});
          } catch (...) {
          }
        }
        if (!opts.log) continue;
        std::string line = "task " + std::to_string(r.id) + " " + r.handler() + " ";
        const std::string took = " in " + std::to_string(d.ms) + " ms";
        if (!recorded[i]) {
          line += "ended" + took + "; outcome not recorded: the claim was gone (cancelled, or claimed again after its lease expired)";
        } else if (items[i].outcome.interrupted) {
          line += "stopped by shutdown" + took + "; back to waiting, attempt not counted";
        } else if (d.result.ok) {
          std::string out = summarize_result(d.result.result);
          line += "done" + took + (out.empty() ? "" : ": " + out);
        } else {
          line += "failed (attempt " + std::to_string(r.attempts) + "/" + std::to_string(r.max_attempts) + ")" + took + ": " +
                  summarize_error(d.result.error);
        }
        log(line);
      }
      detail::MutexLock lk(mu);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!recorded[i]) {
          ++st.lost_leases;
        } else if (batch[i].result.ok) {
          ++st.succeeded;
        } else {
          ++st.failed;
        }
        flights.erase(batch[i].flight->key());
      }
      cv.notify_all();
      wake_locked();  // room for more claims
    }
  }

  TaskStore& store;
  ThreadPool& pool;
  DispatcherOptions opts;
  const std::string host;  // host_key(): whose pids we can check
  const wall_time started_at = std::chrono::time_point_cast<milliseconds>(std::chrono::system_clock::now());
  milliseconds tick{};     // heartbeat period: min(heartbeat, lease/3); set by the constructor
  std::string hostname;    // NodeInfo::host
  // Written by start() (before the loop runs) and then by the loop thread only:
  std::atomic<bool> leading{false};  // read by stats()
  bool beat_failing = false;
  steady::time_point next_chores{};
  // mu guards the members below up to `thread`, and the flags of every Flight (not annotated:
  // they live in the flights, which runs hold by shared_ptr).
  mutable detail::Mutex mu;
  std::condition_variable cv, start_cv;
  std::map<std::string, Handler, std::less<>> handlers TP_GUARDED_BY(mu);
  std::map<Key, std::shared_ptr<Flight>> flights TP_GUARDED_BY(mu);
  std::size_t workers TP_GUARDED_BY(mu) = 1;  // the pool's thread bound, read at start and at each renewal
  bool started TP_GUARDED_BY(mu) = false;
  bool stopping TP_GUARDED_BY(mu) = false;
  bool paused TP_GUARDED_BY(mu) = false;
  bool woken TP_GUARDED_BY(mu) = false;
  std::vector<std::shared_ptr<Flight>> starts TP_GUARDED_BY(mu);  // runs waiting for the group start
  // Launched claims whose runs have not begun, in the order they run: level, then claim order.
  using QueueKey = std::pair<int, std::uint64_t>;  // (-task_level, launch number)
  std::map<QueueKey, std::shared_ptr<Flight>> queued TP_GUARDED_BY(mu);
  std::uint64_t launches TP_GUARDED_BY(mu) = 0;
  std::size_t began TP_GUARDED_BY(mu) = 0;  // runs taken from `queued` since the last commit began
  bool starting TP_GUARDED_BY(mu) = false;                        // a thread is running start_runs
  std::vector<Done> done TP_GUARDED_BY(mu);                       // outcomes waiting to be recorded
  bool flushing TP_GUARDED_BY(mu) = false;                        // a thread is recording outcomes
  steady::time_point commit_retry_at TP_GUARDED_BY(mu){};         // a failed commit is retried from then on
  milliseconds commit_backoff TP_GUARDED_BY(mu){50};
  std::optional<steady::time_point> commit_failing_since TP_GUARDED_BY(mu);
  Stats st TP_GUARDED_BY(mu);
  std::atomic<std::uint64_t> rescued{0}, store_errors{0};  // Stats fields kept outside mu (recover runs with and without it)
  std::thread thread;  // started once by start() (under mu), joined by stop() (under stop_mu)
  detail::Mutex stop_mu;  // serializes stop()
};

Dispatcher::Dispatcher(TaskStore& store, ThreadPool& pool, DispatcherOptions opts)
    : impl_(std::make_shared<Impl>(store, pool, std::move(opts))) {}

Dispatcher::~Dispatcher() { stop(std::chrono::milliseconds(0)); }

void Dispatcher::handle(std::string name, Handler h) {
  if (name.empty()) throw std::invalid_argument("taskpool::Dispatcher::handle: empty handler name");
  detail::MutexLock lk(impl_->mu);
  impl_->handlers[std::move(name)] = std::move(h);
}

void Dispatcher::start() {
  detail::MutexLock lk(impl_->mu);
  if (impl_->started) return;
  impl_->started = true;
  impl_->workers = std::max<std::size_t>(1, impl_->pool.stats().max_threads);
  impl_->beat(impl_->node_info_locked());  // the node shows, and may lead, from the start
  impl_->recover("left running by a runner that died or whose lease expired");
  impl_->thread = std::thread([impl = impl_] { impl->loop(); });
}

void Dispatcher::stop(std::chrono::milliseconds grace) {
  auto& m = *impl_;
  detail::MutexLock stop_lk(m.stop_mu);
  detail::MutexLock lk(m.mu);
  if (!m.started || m.stopping) {
    if (m.thread.joinable()) {
      lk.unlock();
      m.thread.join();
    }
    return;
  }
  m.stopping = true;
  m.cv.notify_all();
  m.wake_locked();
  if (!m.cv.wait_for(lk.native(), grace, [&]() TP_REQUIRES(m.mu) { return m.flights.empty(); })) {
    for (auto& [key, f] : m.flights) {
      if (f->started && !f->finished) f->shutdown_stop = true;  // its failure now is ours, not the task's
      f->stop.request_stop();
    }
    m.cv.wait(lk.native(), [&]() TP_REQUIRES(m.mu) { return m.flights.empty(); });
  }
  lk.unlock();
  m.store.interrupt_wait();
  m.thread.join();
  // Gone from `taskpool nodes`; another node may lead at once. A connection lost just before
  // (the next call reconnects) gets two more tries.
  for (int attempt = 1;; ++attempt) {
    try {
      m.store.remove_node(m.opts.owner);
      m.leading.store(false);
      break;
    } catch (const std::exception& e) {
      if (attempt == 3) {
        m.log(std::string("removing this node's row failed: ") + e.what() + "; it ages out");
        break;
      }
      std::this_thread::sleep_for(milliseconds(200 * attempt));
    }
  }
}

void Dispatcher::pause() {
  detail::MutexLock lk(impl_->mu);
  impl_->paused = true;
}
void Dispatcher::resume() {
  detail::MutexLock lk(impl_->mu);
  impl_->paused = false;
  impl_->wake_locked();
  impl_->cv.notify_all();
}
void Dispatcher::wake() {
  detail::MutexLock lk(impl_->mu);
  impl_->wake_locked();
  impl_->cv.notify_all();
}
std::int64_t Dispatcher::add(const NewTask& t) {
  std::int64_t id = impl_->store.add(t);
  wake();
  return id;
}
Dispatcher::Stats Dispatcher::stats() const {
  detail::MutexLock lk(impl_->mu);
  Stats s = impl_->st;
  s.in_flight = impl_->flights.size();
  s.rescued = impl_->rescued.load();
  s.store_errors = impl_->store_errors.load();
  s.leader = impl_->leading.load();
  return s;
}
const std::string& Dispatcher::owner() const { return impl_->opts.owner; }

}  // namespace taskpool
