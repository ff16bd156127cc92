// tests/chaos_test.cpp — many `taskpool serve` nodes on one database, SIGKILLed and restarted at
// random while they work (#13). Every run of the test's handler (the exec handler running bash)
// appends "S task slot node run start" when it begins and "E task slot node run start end" when it
// ends to one log file (O_APPEND, one write per line), so the log is the runs' own account.
//
// Invariants, checked after the run against that log, the reports and `stats`:
//  1. every one-shot task ran to its end at least once and is done; nothing failed;
//  2. no repeating slot was recorded (reported) twice, and each recorded slot ran to its end;
//  3. no two runs of one task overlapped while a lease was valid: a run of a task begins only
//     after the previous run of that task ended, or after the node that ran it was gone (killed:
//     its lease is then taken back, at once when the node is provably dead on this host, else
//     by the leader once the lease expired);
//  4. stats agrees with the log: done == one-shot tasks, waiting == repeating tasks, none running
//     or failed;
//  5. `taskpool nodes` shows the live nodes only (killed ones age out), none after clean stops.
// Node 0 runs in its own pid namespace (unshare, where allowed): its host key differs, so the
// others can judge its rows only by their lease, as for a node on another machine, and the
// leader's expired-lease rescue is exercised beside the same-host instant one.
//
// Database (the test's parameter): a SQLite file; and PostgreSQL when TASKPOOL_TEST_PG is set (else
// skipped; scripts/test starts a throwaway cluster): a fresh database created for the run through
// TASKPOOL_TEST_PG_ADMIN; there the run also terminates the nodes' connections
// (pg_terminate_backend) twice and restarts the server once (TASKPOOL_TEST_PG_RESTART).
// Length: TASKPOOL_CHAOS_SECONDS (default 30); the task count follows TASKPOOL_STRESS_SCALE.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "common/cli_fixture.hpp"
#include "common/test_util.hpp"

using namespace std::chrono_literals;
using taskpool::test::eventually;

namespace {

using micros = std::int64_t;
micros now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}
// "1700000000.123456" (bash's EPOCHREALTIME) as microseconds.
micros parse_us(const std::string& s) {
  auto dot = s.find_first_of(".,");
  if (dot == std::string::npos) return std::stoll(s) * 1'000'000;
  std::string frac = (s.substr(dot + 1) + "000000").substr(0, 6);
  return std::stoll(s.substr(0, dot)) * 1'000'000 + std::stoll(frac);
}

std::string env_or(const char* name, const std::string& fallback = "") {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

int sh(const std::string& cmd) {
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// The URI `uri` with its database name replaced by `name`, and the user it logs in as.
std::string with_database(const std::string& uri, const std::string& name) {
  auto scheme = uri.find("://");
  auto path = uri.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  auto query = uri.find('?');
  std::string tail = query == std::string::npos ? "" : uri.substr(query);
  if (path == std::string::npos || (query != std::string::npos && path > query))
    return uri.substr(0, query == std::string::npos ? uri.size() : query) + "/" + name + tail;
  return uri.substr(0, path + 1) + name + tail;
}
std::string user_of(const std::string& uri) {
  auto scheme = uri.find("://");
  if (scheme == std::string::npos) return "";
  auto start = scheme + 3, at = uri.find('@', start), slash = uri.find('/', start);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return "";
  return uri.substr(start, std::min(uri.find(':', start), at) - start);
}

// The parameter names the backend: "sqlite" (a file) or "postgresql" (TASKPOOL_TEST_PG).
class ChaosTest : public taskpool::test::CliTest, public ::testing::WithParamInterface<std::string> {
 protected:
  struct Node {
    pid_t pid = -1;
    std::string name;  // "N.INCARNATION": the CHAOS_NODE its runs log
    int incarnation = 0;
  };

  void SetUp() override {
    CliTest::SetUp();
    if (GetParam() == "postgresql") {
      pg_ = env_or("TASKPOOL_TEST_PG");
      if (pg_.empty()) GTEST_SKIP() << "TASKPOOL_TEST_PG is not set (scripts/test starts a throwaway cluster)";
      admin_ = env_or("TASKPOOL_TEST_PG_ADMIN");
      ASSERT_FALSE(admin_.empty()) << "TASKPOOL_TEST_PG is set but TASKPOOL_TEST_PG_ADMIN is not";
      pg_db_ = "taskpool_chaos_" + std::to_string(::getpid());
      std::string owner = user_of(pg_);
      ASSERT_EQ(psql("CREATE DATABASE " + pg_db_ + (owner.empty() ? "" : " OWNER \"" + owner + "\"")), 0);
      db_ = with_database(pg_, pg_db_);
    }
    namespaced_ = sh("unshare --pid --fork --kill-child --mount-proc true >/dev/null 2>&1") == 0;
  }
  void TearDown() override {
    for (auto& n : nodes_)
      if (n.pid > 0) {
        kill(n.pid, SIGKILL);
        waitpid(n.pid, nullptr, 0);
      }
    if (!pg_db_.empty()) psql("DROP DATABASE IF EXISTS " + pg_db_ + " WITH (FORCE)");
    if (HasFailure()) {  // keep the nodes' logs and the run log
      auto keep = std::filesystem::temp_directory_path() / ("taskpool-chaos-failed-" + std::to_string(::getpid()));
      std::error_code ec;
      std::filesystem::copy(dir_, keep, std::filesystem::copy_options::recursive, ec);
      std::printf("chaos: the logs are in %s\n", keep.c_str());
      // CI keeps only this output: each node's error lines and last lines.
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        std::ifstream in(dir_ / ("node" + std::to_string(i) + ".log"));
        std::vector<std::string> tail;
        int shown = 0;
        for (std::string line; std::getline(in, line);) {
          if ((line.find("error") != std::string::npos || line.find("failed") != std::string::npos) && ++shown <= 30)
            std::printf("chaos: node%zu: %s\n", i, line.c_str());
          tail.push_back(line);
          if (tail.size() > 5) tail.erase(tail.begin());
        }
        for (auto& line : tail) std::printf("chaos: node%zu (last lines): %s\n", i, line.c_str());
      }
    }
    CliTest::TearDown();
  }

  int psql(const std::string& sql) {
    return sh("psql -X -q -v ON_ERROR_STOP=1 " + taskpool::test::quote(admin_) + " -c " + taskpool::test::quote(sql) +
              " >/dev/null");
  }

  void start(std::size_t i) {
    Node& n = nodes_[i];
    n.name = std::to_string(i) + "." + std::to_string(++n.incarnation);
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open((dir_ / ("node" + std::to_string(i) + ".log")).c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      dup2(fd, 1);
      dup2(fd, 2);
      setenv("CHAOS_NODE", n.name.c_str(), 1);
      std::vector<std::string> all;
      // --mount-proc: the node's /proc shows its own namespace, so its owner name (pid, start
      // time) is its own and a later incarnation proves an earlier one dead. The daemon must not
      // be the namespace's pid 1 (which ignores signals it has no handler
      // for: the daemon sigwaits): a shell is; stop() signals the daemon itself (unshare passes
      // no signal on), and SIGKILL to unshare kills the whole namespace (--kill-child).
      if (i == 0 && namespaced_)
        all = {"unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", "\"$0\" \"$@\" & wait $!"};
      for (const char* a : {TASKPOOL_CLI_PATH, "serve", "--db"}) all.emplace_back(a);
      all.push_back(db_);
      // PostgreSQL: a lease that outlasts the server's restart (renewals fail while it is down).
      for (const char* a : {"--threads", "4", "--lease", pg_.empty() ? "2s" : "6s", "--heartbeat", "300ms", "--poll", "200ms",
                            "--grace", "10s"})
        all.emplace_back(a);
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    n.pid = pid;
  }
  // The first child of `pid` (/proc/PID/task/PID/children), or -1.
  static pid_t child_of(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
    long long c = -1;
    return f >> c ? static_cast<pid_t>(c) : -1;
  }
  // Stops node i (SIGKILL or SIGTERM) and notes when it was gone.
  void stop(std::size_t i, int sig) {
    Node& n = nodes_[i];
    pid_t target = n.pid;
    if (i == 0 && namespaced_ && sig != SIGKILL) {  // unshare -> sh -> the daemon
      taskpool::test::eventually([&] { return child_of(child_of(n.pid)) > 0; }, 10s);
      target = child_of(child_of(n.pid));
    }
    const micros killed_at = now_us();
    kill(target, sig);
    int rc = wait_exit_within(n.pid, 60s);
    if (sig == SIGTERM) {
      EXPECT_EQ(rc, 0) << "node " << n.name << " did not stop cleanly";
    }
    // SIGKILL: the node may have died any time after the kill (waitpid can return much later on
    // a loaded machine), and a node on its host may take its rows back as soon as it is dead (a
    // zombie counts): the kill's time is the bound. Its runs die with it (the exec handler's
    // supervisor kills the run's group when the daemon dies). SIGTERM: runs end before it exits.
    gone_[n.name] = sig == SIGKILL ? killed_at : now_us();
    n.pid = -1;
  }

  nlohmann::json stats() {
    auto r = cli({"stats", "--json"});
    if (r.rc != 0) return nlohmann::json::object();
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  std::string pg_, admin_, pg_db_;
  bool namespaced_ = false;
  std::vector<Node> nodes_{3};
  std::map<std::string, micros> gone_;  // node incarnation -> when it was gone (killed, or stopped)
};

TEST_P(ChaosTest, NodesKilledAndRestartedLoseNothingAndNeverOverlap) {
  const auto seconds = std::stoi(env_or("TASKPOOL_CHAOS_SECONDS", "30"));
  const std::size_t one_shots = taskpool::test::scaled(2000), long_ones = taskpool::test::scaled(60), repeating = 5;
  const std::string log = (dir_ / "runs.log").string();
  // $1 the log, $2 how long the run sleeps. EPOCHREALTIME: microseconds, no fork.
  const std::string script =
      R"(s=$EPOCHREALTIME; echo "S $TASKPOOL_TASK_ID $TASKPOOL_EXEC_TIME $CHAOS_NODE $$ $s" >> "$1"; )"
      R"(if [ "$2" != 0 ]; then sleep "$2"; fi; )"
      R"(echo "E $TASKPOOL_TASK_ID $TASKPOOL_EXEC_TIME $CHAOS_NODE $$ $s $EPOCHREALTIME" >> "$1"; echo "slot-$TASKPOOL_EXEC_TIME")";
  auto record = [&](const std::string& sleep, std::optional<long long> at, bool repeat) {
    nlohmann::json j = {{"task_type", "exec"},
                        {"max_attempts", 1000},
                        {"payload", {{"argv", {"bash", "-c", script, "chaos", log, sleep}}}}};
    if (at) j["exec_time"] = *at;
    if (repeat) {
      j["repeat_every"] = "1s";
      j["report_on"] = "always";
    }
    return j.dump() + "\n";
  };
  // One-shots spread over the run (so work arrives during the chaos), some long enough to be
  // killed mid-run; repeating tasks that sleep 300 ms per run.
  const long long t0 = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string batch;
  for (std::size_t i = 0; i < one_shots; ++i) batch += record("0", t0 + static_cast<long long>(i * seconds / one_shots), false);
  for (std::size_t i = 0; i < long_ones; ++i)
    batch += record(i % 2 ? "0.5" : "1", t0 + static_cast<long long>(i * seconds / long_ones), false);
  for (std::size_t i = 0; i < repeating; ++i) batch += record("0.3", std::nullopt, true);
  auto added = cli({"add", "--json", "-"}, batch);
  ASSERT_EQ(added.rc, 0) << added.err;
  std::vector<std::int64_t> ids;
  {
    std::istringstream in(added.out);
    for (std::string line; std::getline(in, line);) ids.push_back(std::stoll(line));
  }
  ASSERT_EQ(ids.size(), one_shots + long_ones + repeating);
  const std::set<std::int64_t> once(ids.begin(), ids.end() - static_cast<long>(repeating));
  const std::set<std::int64_t> repeats(ids.end() - static_cast<long>(repeating), ids.end());

  for (std::size_t i = 0; i < nodes_.size(); ++i) start(i);
  std::mt19937 rng(static_cast<unsigned>(now_us()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  int events = 0, kills = 0;
  bool terminated_once = false, restarted = false;
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(700 + rng() % 1800));
    const std::size_t victim = rng() % nodes_.size();
    const bool clean = ++events % 5 == 0;  // now and then a clean stop (SIGTERM: the row goes, leadership is given up)
    stop(victim, clean ? SIGTERM : SIGKILL);
    kills += clean ? 0 : 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 700));
    start(victim);
    if (!pg_.empty()) {
      const auto left = deadline - std::chrono::steady_clock::now();
      if (!terminated_once && left < std::chrono::seconds(seconds) * 2 / 3) {
        // Every connection to the run's database: the nodes' and any command's.
        EXPECT_EQ(psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + pg_db_ +
                       "' AND pid <> pg_backend_pid()"),
                  0);
        terminated_once = true;
      } else if (!restarted && left < std::chrono::seconds(seconds) / 2) {
        EXPECT_EQ(sh(env_or("TASKPOOL_TEST_PG_RESTART") + " >/dev/null 2>&1"), 0) << "TASKPOOL_TEST_PG_RESTART failed";
        restarted = true;
      } else if (restarted && left < std::chrono::seconds(seconds) / 4) {
        psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + pg_db_ +
             "' AND pid <> pg_backend_pid()");
      }
    }
  }
  EXPECT_GT(kills, 0);
  // All nodes up: every one-shot task ends done.
  nlohmann::json st;
  EXPECT_TRUE(eventually(
      [&] {
        st = stats();
        return st.value("done", -1) == static_cast<long long>(once.size()) && st.value("running", -1) == 0;
      },
      std::chrono::seconds(180)))
      << st.dump();
  // The live nodes: the three running ones (the killed incarnations' heartbeats are older).
  std::set<std::string> live;
  auto owners = [&](const std::string& max_age) {
    std::set<std::string> out;
    auto r = cli({"nodes", "--json", "--max-age", max_age});
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) out.insert(nlohmann::json::parse(line).value("owner", ""));
    return out;
  };
  // A killed incarnation's last heartbeat precedes its kill: 2 s after the last kill no such row
  // is fresh any more, and only the running incarnations can make up the three.
  micros last_gone = 0;
  for (const auto& [name, at] : gone_) last_gone = std::max(last_gone, at);
  const micros wait_us = last_gone + 2'500'000 - now_us();
  if (wait_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(wait_us));
  EXPECT_TRUE(eventually([&] {
    live = owners("2s");
    return live.size() == nodes_.size();
  }));
  for (std::size_t i = 0; i < nodes_.size(); ++i) stop(i, SIGTERM);
  for (const auto& o : owners("1h")) EXPECT_EQ(live.count(o), 0u) << o << ": a clean stop removes its row";
  st = stats();
  // 4. stats
  EXPECT_EQ(st.value("done", -1), static_cast<long long>(once.size())) << st.dump();
  EXPECT_EQ(st.value("waiting", -1), static_cast<long long>(repeating)) << st.dump();
  EXPECT_EQ(st.value("running", -1), 0) << st.dump();
  EXPECT_EQ(st.value("failed", -1), 0) << st.dump();

  // The log: runs keyed by (task, node incarnation, bash pid).
  struct Run {
    std::int64_t task;
    std::string slot, node;
    micros start = 0;
    std::optional<micros> end;
  };
  std::map<std::tuple<std::int64_t, std::string, std::string>, Run> runs;
  {
    std::ifstream in(log);
    for (std::string line; std::getline(in, line);) {
      std::istringstream f(line);
      std::string kind, task, slot, node, pid, s, e;
      f >> kind >> task >> slot >> node >> pid >> s >> e;
      ASSERT_TRUE((kind == "S" || kind == "E") && !s.empty()) << "malformed log line: " << line;
      auto& r = runs[{std::stoll(task), node, pid}];
      r.task = std::stoll(task);
      r.slot = slot;
      r.node = node;
      r.start = parse_us(s);
      if (kind == "E") r.end = parse_us(e);
    }
  }
  // 1. every one-shot task ran to its end
  std::map<std::int64_t, std::vector<const Run*>> by_task;
  std::set<std::int64_t> ended;
  std::set<std::pair<std::int64_t, std::string>> ended_slots;
  for (auto& [k, r] : runs) {
    by_task[r.task].push_back(&r);
    if (r.end) {
      ended.insert(r.task);
      ended_slots.insert({r.task, r.slot});
    }
  }
  for (auto id : once) EXPECT_TRUE(ended.count(id)) << "one-shot task " << id << " never ran to its end";
  // 3. no overlap while a lease was valid
  int interrupted = 0;
  for (auto& [task, rs] : by_task) {
    std::sort(rs.begin(), rs.end(), [](const Run* a, const Run* b) { return a->start < b->start; });
    micros busy_until = 0;
    std::string busy_by;
    for (const Run* r : rs) {
      EXPECT_GE(r->start, busy_until) << "task " << task << ": a run on node " << r->node << " began "
                                      << (busy_until - r->start) << " us before the run on node " << busy_by
                                      << " had ended or that node was gone";
      micros end = 0;
      if (r->end) {
        end = *r->end;
      } else {
        ++interrupted;
        auto g = gone_.find(r->node);
        EXPECT_NE(g, gone_.end()) << "task " << task << ": a run on node " << r->node
                                  << " never ended, and that node was not stopped";
        end = g == gone_.end() ? std::numeric_limits<micros>::max() : g->second;
      }
      if (end > busy_until) {
        busy_until = end;
        busy_by = r->node;
      }
    }
  }
  // 2. each repeating slot recorded at most once, and ran to its end
  std::map<std::int64_t, std::set<std::string>> reported;
  auto reps = cli({"reports", "--all", "--limit", "10000000"});
  ASSERT_EQ(reps.rc, 0) << reps.err;
  std::istringstream in(reps.out);
  std::size_t slots = 0;
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    auto task = j["task_id"].get<std::int64_t>();
    if (!repeats.count(task) || !j["result"].is_string()) continue;
    auto text = j["result"].get<std::string>();
    auto pos = text.find("slot-");
    if (pos == std::string::npos) continue;
    auto slot = text.substr(pos + 5, text.find_first_not_of("0123456789", pos + 5) - pos - 5);
    EXPECT_TRUE(reported[task].insert(slot).second) << "task " << task << ": slot " << slot << " recorded twice";
    EXPECT_TRUE(ended_slots.count({task, slot})) << "task " << task << ": slot " << slot << " recorded, not in the log";
    ++slots;
  }
  EXPECT_GT(slots, 0u) << "no repeating run was recorded: the slot check saw nothing";
  std::printf("chaos: %d s, %zu one-shot + %zu repeating tasks, %zu runs logged (%d cut short), %d SIGKILLs, %d events%s\n",
              seconds, once.size(), repeating, runs.size(), interrupted, kills, events,
              pg_.empty() ? " (SQLite)" : " (PostgreSQL: connections terminated, server restarted)");
}

INSTANTIATE_TEST_SUITE_P(Backends, ChaosTest, ::testing::Values("sqlite", "postgresql"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

}  // namespace
