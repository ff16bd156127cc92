// src/cli/main.cpp — the `taskpool` command: the daemon (serve) and task management.
// Reference: docs/cli.md. Every error is one line on stderr and a non-zero exit:
// 2 for bad input or usage, 1 for a failure of the database or the system.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <thread>

#include "store/records.hpp"
#include "taskpool/taskpool.hpp"

namespace {

using namespace taskpool;

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

std::string default_db() {
  const char* env = std::getenv("TASKPOOL_DB");
  return env && *env ? env : "./taskpool.db";
}

SqliteOptions store_options() {
  SqliteOptions o;
  if (const char* t = std::getenv("TASKPOOL_BUSY_TIMEOUT"); t && *t) o.busy_timeout = parse_duration(t);
  return o;
}

std::int64_t parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18)
    throw UsageError("bad task id '" + s + "'");
  return std::stoll(s);
}

std::string read_all(std::istream& in) { return {std::istreambuf_iterator<char>(in), {}}; }

int serve(const std::string& db, std::size_t threads, const std::string& poll, const std::string& grace_text,
          const std::string& lease_text) {
  auto poll_interval = parse_duration(poll);
  auto grace = parse_duration(grace_text);
  auto lease = parse_duration(lease_text);
  if (poll_interval.count() <= 0) throw UsageError("--poll must be positive");
  // Block the stop signals before any thread starts; this thread waits for them.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGTTIN, SIGTTOU}) sigaddset(&sigs, s);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto store = open_sqlite_store(db, store_options());
  ThreadPool pool(threads == 0 ? std::max(1u, std::thread::hardware_concurrency()) : threads);
  DispatcherOptions o;
  o.poll_interval = poll_interval;
  o.lease = lease;
  o.log = [](const std::string& line) {
    std::printf("taskpool: %s\n", line.c_str());
    std::fflush(stdout);
  };
  Dispatcher d(*store, pool, o);
  d.handle("exec", exec_handler());
  d.start();
  std::printf("taskpool: serving %s with %zu threads (owner %s)\n", db.c_str(), pool.stats().max_threads, d.owner().c_str());
  std::fflush(stdout);
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      d.pause();
      std::printf("taskpool: paused (SIGUSR2 resumes)\n");
    } else if (sig == SIGUSR2) {
      d.resume();
      std::printf("taskpool: resumed\n");
    } else if (sig == SIGTTIN || sig == SIGTTOU) {
      // As unicorn and gunicorn do: TTIN adds a worker thread, TTOU removes one (never below 1).
      std::size_t n = pool.stats().max_threads;
      n = sig == SIGTTIN ? std::min(n + 1, ThreadPool::max_supported_threads()) : std::max<std::size_t>(n - 1, 1);
      pool.resize(n, n);
      std::printf("taskpool: threads: %zu\n", n);
    } else {
      std::printf("taskpool: stopping (%s); running tasks have %lld ms to finish\n", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                  static_cast<long long>(grace.count()));
      std::fflush(stdout);
      d.stop(grace);
      auto s = d.stats();
      std::printf("taskpool: stopped: %llu done, %llu failed\n", static_cast<unsigned long long>(s.succeeded),
                  static_cast<unsigned long long>(s.failed));
      return 0;
    }
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"taskpool: a durable task table and its dispatcher daemon"};
  app.require_subcommand(1);
  std::string db = default_db();
  auto add_db = [&](CLI::App* c) { c->add_option("--db", db, "database file (default ./taskpool.db, env TASKPOOL_DB)"); };

  auto* serve_cmd = app.add_subcommand("serve", "run the dispatcher daemon");
  add_db(serve_cmd);
  std::size_t threads = 0;
  std::string poll = "1s", grace = "30s", lease = "30s";
  serve_cmd->add_option("--threads", threads, "worker threads (default: one per CPU)");
  serve_cmd->add_option("--poll", poll, "how often to look for rows written by other processes (default 1s)");
  serve_cmd->add_option("--grace", grace, "time running tasks get to finish on SIGTERM/SIGINT (default 30s)");
  serve_cmd->add_option("--lease", lease, "lease length; renewed while a task runs (default 30s)");

  auto* add_cmd = app.add_subcommand("add", "add a task (or upsert one with --unique-key / --unique)");
  add_db(add_cmd);
  NewTask nt;
  std::string json_in, at, in, every, payload;
  bool unique = false;
  add_cmd->add_option("--json", json_in, "one origin-style JSON record, or - to read records (JSON lines) from stdin");
  add_cmd->add_option("--creator", nt.creator_id, "creator_id");
  add_cmd->add_option("--group", nt.group_id, "group_id");
  add_cmd->add_option("--type", nt.task_type, "task_type");
  add_cmd->add_option("--plugin", nt.by_plugin, "by_plugin");
  add_cmd->add_option("--handler,--exec-task", nt.exec_task, "exec_task: the handler (default: the type)");
  add_cmd->add_option("--payload", payload, "payload JSON (default {})");
  add_cmd->add_option("--at", at, "exec_time: 'YYYY-MM-DD HH:MM:SS' (local), with +HH:MM or Z, or epoch seconds");
  add_cmd->add_option("--in", in, "exec_time relative to now, e.g. 90s");
  add_cmd->add_option("--level", nt.task_level, "task_level 0..9 (default 5)");
  add_cmd->add_option("--report-user", nt.report_user_id, "report_user_id (default: the creator)");
  add_cmd->add_option("--report-group", nt.report_group_id, "report_group_id (default: the group)");
  add_cmd->add_option("--every", every, "repeat_every, e.g. 10m (default: one-shot)");
  add_cmd->add_option("--max-attempts", nt.max_attempts, "runs before a failure is final (default 1)");
  add_cmd->add_option("--unique-key", nt.unique_key, "upsert the live task with this key");
  add_cmd->add_flag("--unique", unique, "upsert by creator+group+type");

  auto* list_cmd = app.add_subcommand("list", "list tasks");
  add_db(list_cmd);
  std::string status_text;
  bool as_json = false;
  std::size_t limit = 1000;
  list_cmd->add_option("--status", status_text, "waiting|running|done|failed|cancelled");
  list_cmd->add_option("--limit", limit, "most rows (default 1000)");
  list_cmd->add_flag("--json", as_json, "JSON lines");

  std::string id_text;
  auto* show_cmd = app.add_subcommand("show", "show one task as JSON");
  add_db(show_cmd);
  show_cmd->add_option("id", id_text, "task id")->required();
  auto* cancel_cmd = app.add_subcommand("cancel", "cancel a task");
  add_db(cancel_cmd);
  cancel_cmd->add_option("id", id_text, "task id")->required();
  auto* retry_cmd = app.add_subcommand("retry", "run a finished, failed or cancelled task again now");
  add_db(retry_cmd);
  retry_cmd->add_option("id", id_text, "task id")->required();
  auto* extend_cmd = app.add_subcommand("extend", "move a waiting task's exec_time");
  add_db(extend_cmd);
  std::string by, to;
  extend_cmd->add_option("id", id_text, "task id")->required();
  auto* by_opt = extend_cmd->add_option("--by", by, "push back by a duration, e.g. 60s");
  auto* to_opt = extend_cmd->add_option("--to", to, "set to a time");
  by_opt->excludes(to_opt);

  auto* stats_cmd = app.add_subcommand("stats", "counts by status");
  add_db(stats_cmd);
  stats_cmd->add_flag("--json", as_json, "JSON output");

  auto* reports_cmd = app.add_subcommand("reports", "print unacknowledged reports");
  add_db(reports_cmd);
  bool ack = false, all = false;
  reports_cmd->add_flag("--ack", ack, "acknowledge the reports printed");
  reports_cmd->add_flag("--all", all, "include acknowledged reports");
  reports_cmd->add_option("--limit", limit, "most rows (default 1000)");

  auto* prune_cmd = app.add_subcommand("prune", "delete finished tasks and acknowledged reports");
  add_db(prune_cmd);
  std::string older_than = "7d";
  prune_cmd->add_option("--older-than", older_than, "retention (default 7d)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "taskpool: error: " << e.what() << "\n";
    return 2;
  }

  try {
    if (serve_cmd->parsed()) return serve(db, threads, poll, grace, lease);
    if (add_cmd->parsed()) {
      std::vector<NewTask> tasks;
      if (!json_in.empty()) {
        for (const CLI::Option* o : add_cmd->get_options())
          if (o->count() > 0 && o->get_name() != "--json" && o->get_name() != "--db" && o->get_name() != "--unique" &&
              o->get_name() != "--help")
            throw UsageError("--json cannot be combined with " + o->get_name());
        tasks = records::tasks_from_text(json_in == "-" ? read_all(std::cin) : json_in);
      } else {
        if (!payload.empty()) nt.payload = payload;
        if (!at.empty() && !in.empty()) throw UsageError("--at and --in exclude each other");
        if (!at.empty()) nt.exec_time = parse_time(at);
        if (!in.empty()) nt.exec_time = std::chrono::system_clock::now() + parse_duration(in);
        if (!every.empty()) nt.repeat_every = parse_duration(every);
        tasks.push_back(nt);
      }
      if (unique) {
        for (auto& t : tasks) t.unique_key = t.creator_id + ":" + t.group_id + ":" + t.task_type;
      }
      auto store = open_sqlite_store(db, store_options());
      for (auto id : store->add_batch(tasks)) std::printf("%lld\n", static_cast<long long>(id));
      return 0;
    }
    auto store = open_sqlite_store(db, store_options());
    if (list_cmd->parsed()) {
      ListQuery q;
      q.limit = limit;
      if (!status_text.empty()) {
        q.status = parse_task_status(status_text);
        if (!q.status) throw UsageError("unknown status '" + status_text + "' (waiting|running|done|failed|cancelled)");
      }
      for (auto& r : store->list(q)) {
        if (as_json) {
          std::printf("%s\n", records::to_json(r).dump().c_str());
        } else {
          std::printf("%-6lld %-9s L%d %s  %-16s %s\n", static_cast<long long>(r.id), std::string(to_string(r.status)).c_str(),
                      r.task_level, format_time(r.exec_time).c_str(), r.handler().c_str(), r.creator_id.c_str());
        }
      }
      return 0;
    }
    if (show_cmd->parsed()) {
      auto r = store->get(parse_id(id_text));
      if (!r) throw UsageError("no task " + id_text);
      std::printf("%s\n", records::to_json(*r).dump(2).c_str());
      return 0;
    }
    auto need = [&](bool ok, const std::string& what) {
      if (!ok) {
        std::fprintf(stderr, "taskpool: error: task %s %s\n", id_text.c_str(), what.c_str());
        return 1;
      }
      return 0;
    };
    if (cancel_cmd->parsed()) return need(store->cancel(parse_id(id_text)), "is not waiting or running (or does not exist)");
    if (retry_cmd->parsed()) return need(store->retry(parse_id(id_text)), "is not finished (or does not exist, or its unique key is live)");
    if (extend_cmd->parsed()) {
      if (by.empty() && to.empty()) throw UsageError("extend needs --by DURATION or --to TIME");
      bool ok = by.empty() ? store->reschedule(parse_id(id_text), parse_time(to))
                           : store->extend(parse_id(id_text), parse_duration(by));
      return need(ok, "is not waiting (or does not exist)");
    }
    if (stats_cmd->parsed()) {
      auto s = store->stats();
      if (as_json) {
        nlohmann::json j = {{"waiting", s.waiting}, {"running", s.running}, {"done", s.done}, {"failed", s.failed},
                            {"cancelled", s.cancelled}, {"unacked_reports", s.unacked_reports}};
        j["next_due"] = s.next_due ? nlohmann::json(format_time(*s.next_due)) : nlohmann::json();
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("waiting %lld  running %lld  done %lld  failed %lld  cancelled %lld  unacked reports %lld\n",
                    static_cast<long long>(s.waiting), static_cast<long long>(s.running), static_cast<long long>(s.done),
                    static_cast<long long>(s.failed), static_cast<long long>(s.cancelled),
                    static_cast<long long>(s.unacked_reports));
      }
      return 0;
    }
    if (reports_cmd->parsed()) {
      auto rs = store->reports(!all, limit);
      std::vector<std::int64_t> ids;
      for (auto& r : rs) {
        std::printf("%s\n", records::to_json(r).dump().c_str());
        ids.push_back(r.id);
      }
      if (ack) store->ack_reports(ids);
      return 0;
    }
    if (prune_cmd->parsed()) {
      std::printf("%zu\n", store->prune(parse_duration(older_than)));
      return 0;
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "taskpool: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "taskpool: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
