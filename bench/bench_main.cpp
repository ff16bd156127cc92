// bench/bench_main.cpp — runs every workload on every library in one process, with Google
// Benchmark's repetitions (randomly interleaved across libraries) and medians, then prints a table
// of medians and taskpool/peer ratios and, with --json FILE, writes the rows as JSON.
//
// Usage: taskpool_bench [--quick] [--json FILE] [--filter REGEX] [google-benchmark flags]
#include <malloc.h>
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "http_workloads.hpp"
#include "store_workloads.hpp"
#include "workloads.hpp"

namespace bench {
namespace {

struct Entry {
  std::string workload, library, unit;
  std::size_t threads;
  int reps;
  std::function<Figure()> run;
};

struct Sizes {
  std::size_t tasks, ping_rounds, pfor, timers, lateness_timers;
  int fib;
  long leaves;
  double idle_seconds;
  int reps, idle_reps;
  std::size_t store_inserts, due_samples;
};

std::vector<Entry> g_entries;
std::string g_self;  // this executable, for child-process measurements

// Resource figures are only meaningful in a fresh process: earlier workloads leave memory in the
// allocators (glibc arenas, TBB's scalable allocator) that later allocations reuse, and threads
// (TBB's workers outlive their arenas) that would be billed to the next library's idle_cpu.
Figure child_measurement(const std::string& workload, const std::string& lib, std::size_t t, double x) {
  std::string cmd = g_self + " --child " + workload + " " + lib + " " + std::to_string(t) + " " + std::to_string(x);
  FILE* p = popen(cmd.c_str(), "r");
  double v = std::nan("");
  if (p != nullptr) {
    if (std::fscanf(p, "%lf", &v) != 1) v = std::nan("");
    pclose(p);
  }
  return {v};
}
std::map<std::string, Figure> g_medians;  // key: workload/library/threads

std::string key(const std::string& w, const std::string& l, std::size_t t) { return w + "/" + l + "/" + std::to_string(t); }

template <class L>
void add_pool_workloads(const Sizes& s, std::size_t t) {
  const std::string lib = L::kName;
  auto add = [&](const char* w, const char* unit, std::function<Figure()> fn, int reps) {
    g_entries.push_back({w, lib, unit, t, reps, std::move(fn)});
  };
  add("post_empty", "ns/task", [=] { return post_empty<L>(t, s.tasks); }, s.reps);
  if constexpr (L::kHasFutures) add("submit_future", "ns/task", [=] { return submit_future<L>(t, s.tasks); }, s.reps);
  if constexpr (L::kHasFutures && L::kHasBatch) add("batch_submit", "ns/task", [=] { return batch_submit<L>(t, s.tasks); }, s.reps);
  if constexpr (L::kCanJoinInside) {
    add("fork_join_fib", "ms", [=] { return fork_join_fib<L>(t, s.fib); }, s.reps);
    add("fan_out_in", "ms", [=] { return fan_out_in<L>(t, s.leaves); }, s.reps);
  }
  add("parallel_for", "ms", [=] { return parallel_for<L>(t, s.pfor); }, s.reps);
  add("ping_pong", "us", [=] { return ping_pong<L>(t, s.ping_rounds); }, s.reps);
  add("many_producers", "ns/task", [=] { return many_producers<L>(t, s.tasks); }, s.reps);
  add("idle_cpu", "CPU-ms", [=] { return child_measurement("idle_cpu", lib, t, s.idle_seconds); }, s.idle_reps);
  add("queued_memory", "bytes", [=] { return child_measurement("queued_memory", lib, t, static_cast<double>(s.tasks)); }, s.reps);
  if constexpr (std::is_same_v<L, Taskpool> || std::is_same_v<L, Asio>) {
    add("timer_lateness", "us", [=] { return timer_lateness<L>(t, s.lateness_timers, std::chrono::milliseconds(100)); }, s.reps);
    if (t == 1) add("timer_insert_cancel", "ns/op", [=] { return timer_insert_cancel<L>(s.timers); }, s.reps);
  }
}

class Collector : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      bool single = r.run_type == Run::RT_Iteration && r.repetitions <= 1;
      if (!single && (r.run_type != Run::RT_Aggregate || r.aggregate_name != "median")) continue;
      Figure f;
      auto v = r.counters.find("value");
      if (v == r.counters.end()) continue;
      f.value = v->second.value;
      auto p = r.counters.find("p99");
      if (p != r.counters.end()) f.p99 = p->second.value;
      g_medians[r.run_name.function_name] = f;
      std::fprintf(stderr, "  %-44s %12.2f\n", r.run_name.function_name.c_str(), f.value);
    }
  }
};

const char* kLibraries[] = {"taskpool", "tbb", "asio", "thread_pool_rvaser", "seed_pool"};

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  // Child mode: one idle_cpu or queued_memory measurement in a fresh process (see above).
  if (argc == 6 && std::string(argv[1]) == "--child") {
    const std::string workload = argv[2], lib = argv[3];
    const std::size_t t = std::stoul(argv[4]);
    const double x = std::stod(argv[5]);
    auto run = [&]<class L>() {
      return workload == "idle_cpu" ? idle_cpu<L>(t, x) : queued_memory<L>(t, static_cast<std::size_t>(x));
    };
    Figure f;
    if (lib == "taskpool") f = run.operator()<Taskpool>();
    else if (lib == "tbb") f = run.operator()<Tbb>();
    else if (lib == "asio") f = run.operator()<Asio>();
    else if (lib == "thread_pool_rvaser") f = run.operator()<Rvaser>();
    else f = run.operator()<Seed>();
    std::printf("%.4f\n", f.value);
    return 0;
  }
  g_self = argv[0];
  mallopt(M_TRIM_THRESHOLD, 16 << 20);  // as `taskpool serve` does (src/cli/main.cpp: keep_freed_memory)
  bool quick = false;
  std::string json_path, filter;
  std::vector<char*> gb_args{argv[0]};
  static std::string interleave = "--benchmark_enable_random_interleaving=true";
  gb_args.push_back(interleave.data());
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else if (a == "--filter" && i + 1 < argc) {
      filter = std::string("--benchmark_filter=") + argv[++i];
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: %s [--quick] [--json FILE] [--filter REGEX]\n", argv[0]);
      return 0;
    } else {
      gb_args.push_back(argv[i]);
    }
  }
  if (!filter.empty()) gb_args.push_back(filter.data());
  Sizes s = quick ? Sizes{200'000, 10'000, 10'000'000, 200'000, 500, 25, 100'000, 0.5, 3, 1, 2'000, 100}
                  : Sizes{1'000'000, 100'000, 10'000'000, 1'000'000, 2'000, 30, 1'000'000, 2.0, 5, 3, 10'000, 400};
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::size_t> thread_counts{1};
  if (cores > 1) thread_counts.push_back(cores);
  for (std::size_t t : thread_counts) {
    add_pool_workloads<Taskpool>(s, t);
    add_pool_workloads<Tbb>(s, t);
    add_pool_workloads<Asio>(s, t);
    add_pool_workloads<Rvaser>(s, t);
    add_pool_workloads<Seed>(s, t);
  }
  // The durable layer (taskpool only).
  {
    std::size_t t = cores;
    auto add = [&](const char* w, const char* unit, std::function<Figure()> fn) {
      g_entries.push_back({w, "taskpool", unit, t, s.reps > 3 ? 3 : s.reps, std::move(fn)});
    };
    add("store_insert", "us/task", [=] { return store_insert(s.store_inserts); });
    add("store_insert_batch", "us/task", [=] { return store_insert_batch(s.store_inserts * 10); });
    add("dispatch_noop", "us/task", [=] { return dispatch_noop(t, s.store_inserts * 5); });
    // #14: fair claims over 10k creators, the plain order, and a handler limited to 2 runs.
    add("dispatch_noop_10k_creators", "us/task",
        [=] { return dispatch_noop(t, s.store_inserts * 5, {.creators = 10'000, .fairness = taskpool::Fairness::creator}); });
    add("dispatch_noop_10k_none", "us/task",
        [=] { return dispatch_noop(t, s.store_inserts * 5, {.creators = 10'000, .fairness = taskpool::Fairness::none}); });
    add("dispatch_noop_limit2", "us/task",
        [=] { return dispatch_noop(t, s.store_inserts * 5, {.limit = 2}); });
    add("due_to_start_inproc", "ms", [=] { return due_to_start(t, s.due_samples, true); });
    add("due_to_start_outproc", "ms", [=] { return due_to_start(t, s.due_samples / 4, false); });
    // The HTTP API (tasks/s for adds: higher is better there).
    add("http_add", "tasks/s", [=] { return http_add(s.store_inserts / 2, 1); });
    add("http_add_batch", "tasks/s", [=] { return http_add(s.store_inserts * 5, 100); });
    add("http_list", "ms", [=] { return http_list(1'000'000); });
    add("metrics_scrape", "ms", [=] { return metrics_scrape(1'000'000); });
    add("dispatch_noop_2nodes", "us/task", [=] { return dispatch_noop(t, s.store_inserts * 5, {.nodes = 2}); });
    // PostgreSQL (scripts/bench starts a throwaway cluster and sets TASKPOOL_BENCH_PG).
    if (!bench_pg().empty()) {
      const auto pg = Backend::postgres;
      add("store_insert_pg", "us/task", [=] { return store_insert(s.store_inserts, pg); });
      add("store_insert_batch_pg", "us/task", [=] { return store_insert_batch(s.store_inserts * 10, pg); });
      add("dispatch_noop_pg", "us/task", [=] { return dispatch_noop(t, s.store_inserts * 5, {.backend = pg}); });
      add("dispatch_noop_2nodes_pg", "us/task", [=] { return dispatch_noop(t, s.store_inserts * 5, {.backend = pg, .nodes = 2}); });
      add("due_to_start_inproc_pg", "ms", [=] { return due_to_start(t, s.due_samples, true, pg); });
      add("due_to_start_outproc_pg", "ms", [=] { return due_to_start(t, s.due_samples / 4, false, pg); });
    } else {
      std::fprintf(stderr, "TASKPOOL_BENCH_PG is not set: no PostgreSQL rows\n");
    }
  }
  for (auto& e : g_entries) {
    benchmark::RegisterBenchmark(key(e.workload, e.library, e.threads).c_str(),
                                 [&e](benchmark::State& st) {
                                   for (auto _ : st) {
                                     Figure f = e.run();
                                     st.SetIterationTime(1e-3);
                                     st.counters["value"] = f.value;
                                     if (!std::isnan(f.p99)) st.counters["p99"] = f.p99;
                                   }
                                 })
        ->Iterations(1)
        ->Repetitions(e.reps)
        ->UseManualTime()
        ->ReportAggregatesOnly(true);
  }
  int gb_argc = static_cast<int>(gb_args.size());
  benchmark::Initialize(&gb_argc, gb_args.data());
  Collector collector;
  std::fprintf(stderr, "running %zu benchmarks (%s)...\n", g_entries.size(), quick ? "quick" : "full");
  benchmark::RunSpecifiedBenchmarks(&collector);

  // Table: one row per workload x threads; taskpool/peer ratios (< 1 means taskpool is faster).
  std::vector<std::pair<std::string, std::string>> workloads;  // (workload, unit) in order
  for (auto& e : g_entries)
    if (std::find(workloads.begin(), workloads.end(), std::make_pair(e.workload, e.unit)) == workloads.end())
      workloads.emplace_back(e.workload, e.unit);
  std::printf("\nMedians (lower is better); ratio = taskpool / peer, < 1.00 means taskpool is faster\n");
  std::printf("%-20s %3s %-8s", "workload", "thr", "unit");
  for (const char* l : kLibraries) std::printf(" %18s", l);
  std::printf("   %s\n", "taskpool/best peer");
  nlohmann::json rows = nlohmann::json::array();
  std::set<std::string> missing;
  for (auto& [w, unit] : workloads) {
    for (std::size_t t : thread_counts) {
      bool any = false;
      for (const char* l : kLibraries) any = any || g_medians.count(key(w, l, t));
      if (!any) continue;
      std::printf("%-20s %3zu %-8s", w.c_str(), t, unit.c_str());
      double best_peer = INFINITY;
      for (const char* l : kLibraries) {
        auto it = g_medians.find(key(w, l, t));
        if (it == g_medians.end()) {
          std::printf(" %18s", "n/a");
          missing.insert(std::string(l) + ": " + w);
          continue;
        }
        const Figure& f = it->second;
        char cell[64];
        if (std::isnan(f.p99)) {
          std::snprintf(cell, sizeof cell, "%.2f", f.value);
        } else {
          std::snprintf(cell, sizeof cell, "%.1f (p99 %.1f)", f.value, f.p99);
        }
        std::printf(" %18s", cell);
        if (std::string(l) != "taskpool") best_peer = std::min(best_peer, f.value);
        nlohmann::json row = {{"workload", w}, {"library", l}, {"threads", t}, {"median", f.value}, {"unit", unit}};
        if (!std::isnan(f.p99)) row["p99"] = f.p99;
        rows.push_back(row);
      }
      auto tp = g_medians.find(key(w, "taskpool", t));
      if (tp != g_medians.end() && std::isfinite(best_peer) && best_peer > 0) {
        std::printf("   %.2f\n", tp->second.value / best_peer);
      } else {
        std::printf("   -\n");
      }
    }
  }
  std::printf("\nn/a: the peer has no way to run the workload (no futures, no bulk submission, waiting inside a\n"
              "task deadlocks it, or no timers); the seed_pool baseline has no timers either.\n");
  if (!json_path.empty()) {
    char date[32];
    std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&now));
    nlohmann::json doc = {{"machine", {{"cpus", cores}, {"compiler", std::string("g++ ") + __VERSION__}}},
                          {"date", date},
                          {"mode", quick ? "quick" : "full"},
                          {"results", rows}};
    std::ofstream(json_path) << doc.dump(2) << "\n";
    std::printf("wrote %s (%zu rows)\n", json_path.c_str(), rows.size());
  }
  benchmark::Shutdown();
}
