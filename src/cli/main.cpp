// src/cli/main.cpp — the `taskpool` command: the daemon (serve) and task management.
// Reference: docs/cli.md. Every error is one line on stderr, "taskpool: error: <what>", and the
// exit status says what kind of failure it was, the same for every subcommand:
//   0  success
//   1  failure of the database or the system (locked past the busy timeout, not a taskpool
//      database, a read-only file written to, a full disk)
//   2  usage or bad input (unknown command or option, bad time, invalid record; nothing stored)
//   3  not found: no task with that id, or no database at the path (only add and serve create one)
//   4  the task's state does not allow it (cancel a finished task, retry a waiting or running
//      one, extend one that is not waiting)
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <thread>

#include "store/records.hpp"
#include "store/task_rules.hpp"
#include "taskpool/cron.hpp"
#include "taskpool/http.hpp"
#include "taskpool/taskpool.hpp"

#ifndef TASKPOOL_VERSION
#define TASKPOOL_VERSION "unknown"
#endif

namespace {

using namespace taskpool;

enum Exit { kOk = 0, kFailure = 1, kUsage = 2, kNotFound = 3, kWrongState = 4 };

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct NotFound : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct WrongState : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void print_error(const std::string& what) {
  std::fprintf(stderr, "taskpool: error: %s\n", records::printable(what).c_str());
}

std::string default_db() {
  const char* env = std::getenv("TASKPOOL_DB");
  return env && *env ? env : "./taskpool.db";
}

// create: add and serve; write: commands that change rows; read: the rest (a read-only
// database, file or directory, can still be read).
enum class Access { create, write, read };

bool is_uri(const std::string& db) { return db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0; }

// A thin wrapper over taskpool::open_store: a path must exist unless creating; a URI names a
// PostgreSQL database (create=false there too: a typo in the schema creates nothing). The daemons
// (serve, web) wait up to the connect timeout for a server that cannot be reached yet (started
// with it, or during its restart); the other commands fail at once.
enum class Waits { no, for_server };
std::unique_ptr<TaskStore> open_store(const std::string& db, Access access, Waits waits = Waits::no) {
  StoreOptions o;
  if (waits == Waits::for_server) o.connect_wait = o.connect_timeout;
  if (const char* t = std::getenv("TASKPOOL_BUSY_TIMEOUT"); t && *t) o.busy_timeout = parse_duration(t, "TASKPOOL_BUSY_TIMEOUT");
  if (access != Access::create) {
    o.create = false;
    if (!is_uri(db)) {
      // A typo in --db must not leave an empty database behind.
      std::error_code ec;
      if (!std::filesystem::exists(db, ec) || (std::filesystem::is_regular_file(db, ec) && std::filesystem::file_size(db, ec) == 0))
        throw NotFound("no database at " + db);
    }
    if (access == Access::read) {
      o.read_only = true;
      try {
        return taskpool::open_store(db, o);
      } catch (const StoreError&) {
        // A read-only open refuses, e.g., an older schema (migrating needs a write): where the
        // user may write, open as the other commands do; elsewhere the first error stands.
        if (is_uri(db) || ::access(db.c_str(), W_OK) != 0) throw;
        o.read_only = false;
      }
    }
  }
  return taskpool::open_store(db, o);
}

std::int64_t parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18)
    throw UsageError("bad task id '" + s + "'");
  return std::stoll(s);
}

std::string read_all(std::istream& in) { return {std::istreambuf_iterator<char>(in), {}}; }

// A serve log line: ISO 8601 UTC timestamp first. A failed write (the reader went away) is
// dropped: logging never stops the daemon.
void log_line(const std::string& line) {
  std::string s = format_time_utc(std::chrono::system_clock::now()) + " taskpool: " + line + "\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

struct ServeArgs {
  std::size_t threads = 0;
  std::string poll = "1s", grace = "30s", lease = "30s", fairness = "creator", limits;
  std::size_t prefetch = DispatcherOptions{}.prefetch;
  std::string http, http_token;  // --http [ADDR:]PORT; --http-token (else TASKPOOL_HTTP_TOKEN, else generated)
  bool metrics_public = false;
  std::vector<std::string> exec_allow;
  std::string heartbeat = "5s", prune_after;
};

// "memo=2,exec=4" -> {memo: 2, exec: 4}; a one-line error naming --limit otherwise.
std::map<std::string, std::size_t> parse_limits(const std::string& text) {
  std::map<std::string, std::size_t> out;
  if (text.empty()) return out;
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = text.find(',', at);
    std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    std::size_t eq = item.find('=');
    std::string name = item.substr(0, eq), n = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (name.empty() || n.empty() || n.size() > 9 || n.find_first_not_of("0123456789") != std::string::npos || std::stoul(n) == 0)
      throw UsageError("--limit: '" + item + "' is not HANDLER=N with N >= 1 (e.g. memo=2,exec=4)");
    if (!out.emplace(name, std::stoul(n)).second) throw UsageError("--limit: handler '" + name + "' is named twice");
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// --http [ADDR:]PORT (ADDR may be [v6]) and the token -> HttpOptions. Exit 2 for a bad value or
// a non-loopback address without an explicit token (HttpServer refuses it).
HttpOptions http_options(const ServeArgs& a) {
  HttpOptions o;
  std::string port = a.http;
  if (auto colon = a.http.rfind(':'); colon != std::string::npos) {
    o.host = a.http.substr(0, colon);
    port = a.http.substr(colon + 1);
    if (o.host.size() >= 2 && o.host.front() == '[' && o.host.back() == ']') o.host = o.host.substr(1, o.host.size() - 2);
    if (o.host.empty()) throw UsageError("--http: no address before ':' in '" + a.http + "'");
  }
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535)
    throw UsageError("--http: expected [ADDR:]PORT with PORT 0..65535, got '" + a.http + "'");
  o.port = std::stoi(port);
  o.token = a.http_token;
  if (o.token.empty())
    if (const char* t = std::getenv("TASKPOOL_HTTP_TOKEN"); t && *t) o.token = t;
  if (o.token.empty() && !is_loopback(o.host))
    throw UsageError("--http " + o.host + ": an address other than loopback needs an explicit token (--http-token or TASKPOOL_HTTP_TOKEN)");
  o.metrics_public = a.metrics_public;
  o.log = log_line;
  return o;
}

// Starts the server and prints where the dashboard is (with its token).
void start_http(HttpServer& http) {
  http.start();
  log_line("dashboard: " + http.dashboard_url());
}

// For the daemons (serve, web): store calls run on worker and request threads, each with its
// own glibc arena, and freeing the top of such an arena trims it (madvise) past 128 KiB, so the
// next transaction page-faults its memory back in: batched adds over HTTP ran 4x slower. Each
// arena keeps up to 16 MiB instead.
void keep_freed_memory() { mallopt(M_TRIM_THRESHOLD, 16 << 20); }

// Blocks the stop signals (before any thread starts) and returns them; the caller sigwaits.
sigset_t stop_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  return sigs;
}

// `taskpool web`: the API and the dashboard on the database, running no tasks.
int web(const std::string& db, const ServeArgs& a) {
  if (a.http.empty()) throw UsageError("web needs --http [ADDR:]PORT");
  auto opts = http_options(a);
  keep_freed_memory();
  sigset_t sigs = stop_signals();
  auto store = open_store(db, Access::write, Waits::for_server);
  HttpServer http(*store, opts);
  start_http(http);
  log_line("watching " + db + " (no tasks run here)");
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  http.stop();
  return kOk;
}

int serve(const std::string& db, const ServeArgs& a) {
  auto poll_interval = parse_duration(a.poll, "--poll");
  auto grace = parse_duration(a.grace, "--grace");
  auto lease = parse_duration(a.lease, "--lease");
  if (poll_interval.count() <= 0) throw UsageError("--poll must be positive");
  // SIGPIPE (stdout piped to a reader that went away) would kill the daemon with tasks running.
  // A handler that does nothing, rather than SIG_IGN: a write then fails with EPIPE, and
  // programs the exec handler starts get the default back on exec, as they expect.
  struct sigaction sa {};
  sa.sa_handler = [](int) {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPIPE, &sa, nullptr);
  // Block the stop signals before any thread starts; this thread waits for them.
  sigset_t sigs = stop_signals();
  keep_freed_memory();

  DispatcherOptions o;
  o.fairness = a.fairness == "group" ? Fairness::group : a.fairness == "none" ? Fairness::none : Fairness::creator;
  o.limits = parse_limits(a.limits);
  o.poll_interval = poll_interval;
  o.lease = lease;
  o.prefetch = a.prefetch;
  o.heartbeat = parse_duration(a.heartbeat, "--heartbeat");
  if (o.heartbeat.count() <= 0) throw UsageError("--heartbeat must be positive");
  if (!a.prune_after.empty()) o.retention = parse_duration(a.prune_after, "--prune-after");
  o.log = log_line;
  std::optional<HttpOptions> http_opts;
  if (!a.http.empty()) http_opts = http_options(a);  // usage errors before the database is touched
  auto store = open_store(db, Access::create, Waits::for_server);
  std::unique_ptr<HttpServer> http;
  if (http_opts) {
    http = std::make_unique<HttpServer>(*store, *http_opts);
    o.on_run_end = http->run_observer();
  }
  ThreadPool pool(a.threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : a.threads);
  Dispatcher d(*store, pool, o);  // std::invalid_argument (exit 2) for a lease below the floor
  d.handle("exec", a.exec_allow.empty() ? exec_handler() : exec_handler(ExecOptions{a.exec_allow}));
  d.start();
  if (http) {
    http->attach(d, pool);
    start_http(*http);
  }
  log_line("serving " + redact_uri(db) + " with " + std::to_string(pool.stats().max_threads) + " threads (owner " + d.owner() + ")");
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      d.pause();
      if (http) http->note_paused(true);
      log_line("paused (SIGUSR2 resumes)");
    } else if (sig == SIGUSR2) {
      d.resume();
      if (http) http->note_paused(false);
      log_line("resumed");
    } else if (sig == SIGTTIN || sig == SIGTTOU) {
      // As unicorn and gunicorn do: TTIN adds a worker thread, TTOU removes one (never below 1).
      std::size_t n = pool.stats().max_threads;
      n = sig == SIGTTIN ? std::min(n + 1, ThreadPool::max_supported_threads()) : std::max<std::size_t>(n - 1, 1);
      pool.resize(n, n);
      log_line("threads: " + std::to_string(n));
    } else {
      log_line(std::string("stopping (") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + "); running tasks have " +
               std::to_string(grace.count()) + " ms to finish");
      if (http) http->stop();
      d.stop(grace);
      auto s = d.stats();
      log_line("stopped: " + std::to_string(s.succeeded) + " done, " + std::to_string(s.failed) + " failed");
      return kOk;
    }
  }
}

// The SCHEDULE column of `list`: "cron 0 9 * * 1-5 Europe/Berlin", "every 600000ms",
// "debounce 60000ms max 600000ms", or "-".
std::string schedule_text(const TaskRecord& r) {
  std::string out;
  auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; };
  if (!r.cron.empty()) out = "cron " + r.cron + (r.tz.empty() ? "" : " " + r.tz);
  if (r.repeat_every) out = "every " + ms(*r.repeat_every);
  if (r.debounce) out += (out.empty() ? "" : ", ") + std::string("debounce ") + ms(*r.debounce);
  if (r.max_wait) out += " max " + ms(*r.max_wait);
  return out.empty() ? "-" : records::printable(out);
}

// Why an existing task refused a state change: 3 when it does not exist (any more), else 4.
[[noreturn]] void refused(TaskStore& store, std::int64_t id, const std::string& why) {
  if (!store.get(id)) throw NotFound("no task " + std::to_string(id));
  throw WrongState("task " + std::to_string(id) + " " + why);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"taskpool: a durable task table and its dispatcher daemon", "taskpool"};
  app.set_version_flag("--version", std::string("taskpool ") + TASKPOOL_VERSION, "print the version and exit");
  app.require_subcommand(1);
  std::string db = default_db();
  const std::string db_help = "database: a file (SQLite; default ./taskpool.db) or a postgresql:// URI (env TASKPOOL_DB)";
  app.add_option("--db", db, db_help);
  std::vector<std::string> commands;
  auto command = [&](const char* name, const char* help) {
    commands.emplace_back(name);
    auto* c = app.add_subcommand(name, help);
    c->add_option("--db", db, db_help);
    return c;
  };

  auto* serve_cmd = command("serve", "run the dispatcher daemon");
  ServeArgs serve_args;
  serve_cmd->add_option("--threads", serve_args.threads, "worker threads (default: one per CPU)");
  serve_cmd->add_option("--poll", serve_args.poll, "longest sleep without looking at the database (default 1s)");
  serve_cmd->add_option("--grace", serve_args.grace, "time running tasks get to finish on SIGTERM/SIGINT (default 30s)");
  serve_cmd->add_option("--lease", serve_args.lease, "lease length, at least 1s; renewed every lease/3 while a task runs (default 30s)");
  serve_cmd->add_option("--prefetch", serve_args.prefetch,
                        "tasks claimed beyond the free worker threads (default " + std::to_string(serve_args.prefetch) + ")");
  serve_cmd->add_option("--fairness", serve_args.fairness,
                        "claim order among due tasks of a level: creator (alternate between creators, the default), group, "
                        "or none (earliest first)")
      ->check(CLI::IsMember({"creator", "group", "none"}));
  serve_cmd->add_option("--limit", serve_args.limits,
                        "at most N runs of a handler at once on this daemon, e.g. memo=2,exec=4 (the others wait in the table)");

  auto http_flags = [](CLI::App* c, ServeArgs& a) {
    c->add_option("--http", a.http, "serve the HTTP API, the dashboard and /metrics on [ADDR:]PORT (default ADDR 127.0.0.1)");
    c->add_option("--http-token", a.http_token, "the API token (default: env TASKPOOL_HTTP_TOKEN, else a random one, printed)");
    c->add_flag("--metrics-public", a.metrics_public, "serve /metrics without the token");
  };
  http_flags(serve_cmd, serve_args);
  serve_cmd->add_option("--exec-allow", serve_args.exec_allow, "programs the exec handler may run (paths, comma-separated; default: any)")
      ->delimiter(',');
  auto* web_cmd = command("web", "serve the HTTP API and the dashboard on the database without running tasks");
  ServeArgs web_args;
  http_flags(web_cmd, web_args);

  serve_cmd->add_option("--heartbeat", serve_args.heartbeat,
                        "how often this node updates its row in `taskpool nodes` and renews or seeks the maintenance "
                        "leadership (default 5s; at most lease/3 is used)");
  serve_cmd->add_option("--prune-after", serve_args.prune_after,
                        "the maintenance leader deletes finished tasks and acknowledged reports older than this, once a "
                        "minute (default: never)");

  auto* add_cmd = command("add", "add a task (or upsert one with --unique-key / --unique)");
  NewTask nt;
  std::string json_in, at, in, every, payload, report, debounce, max_wait;
  bool unique = false;
  auto* json_opt = add_cmd->add_option(
      "--json", json_in,
      "task records instead of the options below: a stream of JSON values (objects one after another, arrays of "
      "objects, JSON lines; // and /* */ comments), or - to read them from stdin");
  std::vector<CLI::Option*> fields = {
      add_cmd->add_option("--creator", nt.creator_id, "creator_id"),
      add_cmd->add_option("--group", nt.group_id, "group_id"),
      add_cmd->add_option("--type", nt.task_type, "task_type"),
      add_cmd->add_option("--plugin", nt.by_plugin, "by_plugin"),
      add_cmd->add_option("--handler,--exec-task", nt.exec_task, "exec_task: the handler (default: the type)"),
      add_cmd->add_option("--payload", payload, "payload JSON (default {}); checked at add for the exec handler"),
      add_cmd->add_option("--at", at, "exec_time: 'YYYY-MM-DD HH:MM:SS' (local), with +HH:MM or Z, or epoch seconds"),
      add_cmd->add_option("--in", in, "exec_time relative to now, e.g. 90s"),
      add_cmd->add_option("--level", nt.task_level, "task_level 0..9 (default 5)"),
      add_cmd->add_option("--report-user", nt.report_user_id, "report_user_id (default: the creator)"),
      add_cmd->add_option("--report-group", nt.report_group_id, "report_group_id (default: the group)"),
      add_cmd->add_option("--report", report,
                          "which runs write a report: always|failure|never (default: always for one-shot tasks, failure "
                          "for repeating ones)")
          ->check(CLI::IsMember({"always", "failure", "never"})),
      add_cmd->add_option("--every", every, "repeat_every, e.g. 10m (default: one-shot)"),
      add_cmd->add_option("--max-attempts", nt.max_attempts, "runs before a failure is final (default 1)"),
      add_cmd->add_option("--unique-key", nt.unique_key, "upsert the live task with this key"),
      add_cmd->add_option("--cron", nt.cron,
                          "repeat on a cron schedule: 5 fields (min hour dom month dow), 6 with leading seconds, or @daily "
                          "etc.; first run at its next instant unless --at/--in"),
      add_cmd->add_option("--tz", nt.tz, "IANA time zone of --cron, e.g. Europe/Berlin (default UTC)"),
      add_cmd->add_option("--debounce", debounce,
                          "with --unique-key: each add re-arms the waiting task to now + this (e.g. 1m)"),
      add_cmd->add_option("--max-wait", max_wait, "with --debounce: but never later than this after the first arm (e.g. 10m)"),
  };
  auto* unique_flag = add_cmd->add_flag("--unique", unique, "upsert by creator+group+type");
  for (CLI::Option* f : fields) json_opt->excludes(f);
  add_cmd->get_option("--at")->excludes("--in");
  unique_flag->excludes("--unique-key");

  auto* list_cmd = command("list", "list tasks (streamed: any --limit in constant memory)");
  std::string status_text;
  bool as_json = false;
  std::size_t limit = 1000;
  list_cmd->add_option("--status", status_text, "waiting|running|done|failed|cancelled");
  list_cmd->add_option("--limit", limit, "most rows (default 1000)");
  list_cmd->add_flag("--json", as_json, "JSON lines (no header)");

  std::string id_text;
  auto* show_cmd = command("show", "show one task as JSON");
  show_cmd->add_option("id", id_text, "task id")->required();
  auto* next_cmd = command("next", "print the next instants of a stored repeating task (cron: in its zone)");
  std::size_t count = 5;
  next_cmd->add_option("id", id_text, "task id")->required();
  next_cmd->add_option("--count", count, "how many (default 5)")->check(CLI::Range(1, 10000));
  auto* cancel_cmd = command("cancel", "cancel a waiting or running task");
  cancel_cmd->add_option("id", id_text, "task id")->required();
  auto* retry_cmd = command("retry", "run a finished, failed or cancelled task again now");
  retry_cmd->add_option("id", id_text, "task id")->required();
  auto* extend_cmd = command("extend", "move a waiting task's exec_time");
  std::string by, to;
  extend_cmd->add_option("id", id_text, "task id")->required();
  auto* by_opt = extend_cmd->add_option("--by", by, "push back by a duration, e.g. 60s");
  auto* to_opt = extend_cmd->add_option("--to", to, "set to a time");
  by_opt->excludes(to_opt);

  auto* stats_cmd = command("stats", "counts by status, unacknowledged reports, next due time");
  stats_cmd->add_flag("--json", as_json, "JSON output");

  auto* reports_cmd = command("reports", "print unacknowledged reports as JSON lines");
  bool ack = false, all = false;
  reports_cmd->add_flag("--ack", ack, "acknowledge the reports printed");
  reports_cmd->add_flag("--all", all, "include acknowledged reports");
  reports_cmd->add_option("--limit", limit, "most rows (default 1000)");

  auto* prune_cmd = command("prune", "delete finished tasks and acknowledged reports");
  std::string older_than = "7d";
  prune_cmd->add_option("--older-than", older_than, "retention (default 7d)");

  auto* cron_next_cmd = command("cron-next", "print the next instants of a cron expression");
  std::string cron_expr, cron_tz, cron_from;
  int cron_count = 5;
  cron_next_cmd->add_option("expr", cron_expr, "5 or 6 fields, or a @macro (quote it)")->required();
  cron_next_cmd->add_option("--tz", cron_tz, "IANA time zone, e.g. Europe/London (default UTC)");
  cron_next_cmd->add_option("--from", cron_from, "instants strictly after this time (default now)");
  cron_next_cmd->add_option("--count", cron_count, "how many (default 5)")->check(CLI::Range(0, 100000));
  auto* nodes_cmd = command("nodes", "live dispatcher nodes: host, pid, threads, in-flight tasks, last heartbeat");
  std::string max_age = "15s";
  nodes_cmd->add_flag("--json", as_json, "JSON lines (no header)");
  nodes_cmd->add_option("--max-age", max_age, "a node whose last heartbeat is older is dead and not listed (default 15s)");

  // The first word that is not an option (or --db's value) must name a command.
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--db") {
      ++i;
      continue;
    }
    if (a.rfind('-', 0) == 0) continue;
    if (std::find(commands.begin(), commands.end(), a) == commands.end()) {
      std::string names;
      for (auto& c : commands) names += (names.empty() ? "" : ", ") + c;
      print_error("unknown command '" + a + "' (commands: " + names + ")");
      return kUsage;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    print_error(e.what());
    return kUsage;
  }

  try {
    if (serve_cmd->parsed()) return serve(db, serve_args);
    if (web_cmd->parsed()) return web(db, web_args);
    if (add_cmd->parsed()) {
      // Refused here, before the database is opened (or created): a payload the built-in exec
      // handler cannot run would otherwise fail only when it runs.
      auto check = [&](const NewTask& t) {
        if (unique && !t.unique_key.empty()) throw UsageError("--unique cannot be combined with a record's unique_key");
        if ((t.exec_task.empty() ? t.task_type : t.exec_task) == "exec") validate_exec_payload(t.payload);
      };
      std::vector<NewTask> tasks;
      if (!json_in.empty()) {
        tasks = records::tasks_from_text(json_in == "-" ? read_all(std::cin) : json_in, check);
      } else {
        if (!payload.empty()) nt.payload = payload;
        if (!at.empty()) nt.exec_time = parse_time(at, "--at");
        if (!in.empty()) {
          nt.exec_time = std::chrono::system_clock::now() + parse_duration(in, "--in");
          check_time(*nt.exec_time, "--in");
        }
        if (!every.empty()) nt.repeat_every = parse_duration(every, "--every");
        if (!debounce.empty()) nt.debounce = parse_duration(debounce, "--debounce");
        if (!max_wait.empty()) nt.max_wait = parse_duration(max_wait, "--max-wait");
        if (!report.empty()) nt.report_on = parse_report_on(report);
        store::validate(nt);
        check(nt);
        tasks.push_back(nt);
      }
      if (unique) {
        for (auto& t : tasks) t.unique_key = t.creator_id + ":" + t.group_id + ":" + t.task_type;
      }
      auto store = open_store(db, Access::create);
      for (auto id : store->add_batch(tasks)) std::printf("%lld\n", static_cast<long long>(id));
      return kOk;
    }
    if (list_cmd->parsed()) {
      ListQuery q;
      q.limit = limit;
      if (!status_text.empty()) {
        q.status = parse_task_status(status_text);
        if (!q.status) throw UsageError("unknown status '" + status_text + "' (waiting|running|done|failed|cancelled)");
      }
      auto store = open_store(db, Access::read);
      if (!as_json)
        std::printf("%-6s %-9s %-2s %-19s  %-16s %-10s %s\n", "ID", "STATUS", "LV", "EXEC_TIME", "HANDLER", "CREATOR", "SCHEDULE");
      // Printed as the rows come: memory stays flat whatever the limit.
      store->scan(q, [&](const TaskRecord& r) {
        if (as_json) {
          std::printf("%s\n", records::dump(records::to_json(r)).c_str());
        } else {
          std::printf("%-6lld %-9s L%d %s  %-16s %-10s %s\n", static_cast<long long>(r.id), std::string(to_string(r.status)).c_str(),
                      r.task_level, format_time(r.exec_time).c_str(), r.handler().c_str(), r.creator_id.c_str(),
                      schedule_text(r).c_str());
        }
        return true;
      });
      return kOk;
    }
    if (show_cmd->parsed()) {
      auto id = parse_id(id_text);
      auto store = open_store(db, Access::read);
      auto r = store->get(id);
      if (!r) throw NotFound("no task " + id_text);
      std::printf("%s\n", records::dump(records::to_json(*r), 2).c_str());
      return kOk;
    }
    if (next_cmd->parsed()) {
      auto id = parse_id(id_text);
      auto store = open_store(db, Access::read);
      auto r = store->get(id);
      if (!r) throw NotFound("no task " + id_text);
      if (!r->repeats()) throw WrongState("task " + id_text + " does not repeat (no cron, no repeat_every)");
      // From the planned time of its next run: that one first, then the ones after it. Printed as
      // cron-next prints them: in the task's zone (a grid in UTC).
      const auto zone = CronSchedule::parse(r->cron.empty() ? "* * * * *" : r->cron, r->tz);
      wall_time t = r->planned_time.value_or(r->exec_time);
      for (std::size_t i = 0; i < count && t < kMaxTime; ++i) {
        std::printf("%s\n", zone.format(t).c_str());
        t = store::next_occurrence(*r, t, t);
      }
      return kOk;
    }
    if (cancel_cmd->parsed()) {
      auto id = parse_id(id_text);
      auto store = open_store(db, Access::write);
      if (!store->cancel(id)) refused(*store, id, "is not waiting or running");
      return kOk;
    }
    if (retry_cmd->parsed()) {
      auto id = parse_id(id_text);
      auto store = open_store(db, Access::write);
      if (!store->retry(id)) refused(*store, id, "is not done, failed or cancelled (or its unique key is live again)");
      return kOk;
    }
    if (extend_cmd->parsed()) {
      auto id = parse_id(id_text);
      if (by.empty() && to.empty()) throw UsageError("extend needs --by DURATION or --to TIME");
      std::optional<wall_time> new_time;
      std::chrono::milliseconds by_ms{0};
      if (by.empty()) new_time = parse_time(to, "--to");
      else by_ms = parse_duration(by, "--by");
      auto store = open_store(db, Access::write);
      bool ok = new_time ? store->reschedule(id, *new_time) : store->extend(id, by_ms);
      if (!ok) refused(*store, id, "is not waiting");
      return kOk;
    }
    if (stats_cmd->parsed()) {
      auto store = open_store(db, Access::read);
      auto s = store->stats();
      if (as_json) {
        nlohmann::json j = {{"waiting", s.waiting}, {"running", s.running}, {"done", s.done}, {"failed", s.failed},
                            {"cancelled", s.cancelled}, {"unacked_reports", s.unacked_reports}};
        j["next_due"] = s.next_due ? nlohmann::json(format_time_precise(*s.next_due)) : nlohmann::json();
        std::printf("%s\n", records::dump(j).c_str());
      } else {
        std::printf("waiting %lld  running %lld  done %lld  failed %lld  cancelled %lld  unacked reports %lld  next due %s\n",
                    static_cast<long long>(s.waiting), static_cast<long long>(s.running), static_cast<long long>(s.done),
                    static_cast<long long>(s.failed), static_cast<long long>(s.cancelled),
                    static_cast<long long>(s.unacked_reports), s.next_due ? format_time(*s.next_due).c_str() : "-");
      }
      return kOk;
    }
    if (reports_cmd->parsed()) {
      auto store = open_store(db, ack ? Access::write : Access::read);
      auto rs = store->reports(!all, limit);
      std::vector<std::int64_t> ids;
      for (auto& r : rs) {
        std::printf("%s\n", records::dump(records::to_json(r)).c_str());
        ids.push_back(r.id);
      }
      std::fflush(stdout);
      if (ack) store->ack_reports(ids);
      return kOk;
    }
    if (cron_next_cmd->parsed()) {
      auto schedule = CronSchedule::parse(cron_expr, cron_tz);
      auto t = cron_from.empty() ? std::chrono::system_clock::now() : parse_time(cron_from, "--from");
      for (int i = 0; i < cron_count; ++i) {
        auto next = schedule.next(t);
        if (!next) break;  // none before 2200
        std::printf("%s\n", schedule.format(*next).c_str());
        t = *next;
      }
      return kOk;
    }
    if (nodes_cmd->parsed()) {
      auto age = parse_duration(max_age, "--max-age");
      if (age.count() <= 0) throw UsageError("--max-age must be positive");
      auto store = open_store(db, Access::read);
      auto ns = store->nodes(age);
      if (!as_json) std::printf("%-20s %-8s %7s %5s %6s %9s %-6s %-29s %s\n", "HOST", "PID", "THREADS", "BUSY", "QUEUED",
                                "IN_FLIGHT", "STATE", "HEARTBEAT", "OWNER");
      for (const NodeInfo& n : ns) {
        if (as_json) {
          nlohmann::json j = {{"owner", n.owner}, {"host", n.host}, {"pid", n.pid}, {"threads", n.threads},
                              {"busy", n.busy}, {"queued", n.queued}, {"in_flight", n.in_flight}, {"paused", n.paused},
                              {"started", format_time_precise(n.started)}, {"heartbeat", format_time_precise(n.heartbeat)}};
          std::printf("%s\n", records::dump(j).c_str());
        } else {
          std::printf("%-20s %-8lld %7zu %5zu %6zu %9zu %-6s %-29s %s\n", records::printable(n.host).c_str(),
                      static_cast<long long>(n.pid), n.threads, n.busy, n.queued, n.in_flight, n.paused ? "paused" : "active",
                      format_time_precise(n.heartbeat).c_str(), records::printable(n.owner).c_str());
        }
      }
      return kOk;
    }
    if (prune_cmd->parsed()) {
      auto retention = parse_duration(older_than, "--older-than");
      auto store = open_store(db, Access::write);
      std::printf("%zu\n", store->prune(retention));
      return kOk;
    }
  } catch (const NotFound& e) {
    print_error(e.what());
    return kNotFound;
  } catch (const WrongState& e) {
    print_error(e.what());
    return kWrongState;
  } catch (const std::invalid_argument& e) {
    print_error(e.what());
    return kUsage;
  } catch (const std::exception& e) {
    print_error(e.what());
    return kFailure;
  }
  return kOk;
}
