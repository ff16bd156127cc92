// src/http/metrics.hpp — run metrics kept in memory for /metrics and the dashboard's overview:
// runs by handler and outcome, run-time and start-delay histograms, and per-minute done/failed
// counts for the last hour. Fed by DispatcherOptions::on_run_end; a scrape reads these counters
// and never the task table.
//
// Thread-safety: every member may be called from any thread (one mutex, held for a few
// additions). Blocking: never.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "taskpool/dispatcher.hpp"

namespace taskpool::http {

class RunMetrics {
 public:
  // Upper bounds in seconds; the last bucket is +Inf.
  static constexpr std::array<double, 14> kBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
  // Distinct handler labels kept; runs of further handlers count under handler="other" (a
  // label per task type someone invents must not grow the scrape without bound).
  static constexpr std::size_t kMaxHandlers = 64;

  struct Histogram {
    std::array<std::uint64_t, kBuckets.size() + 1> counts{};  // per bucket (not cumulative)
    double sum = 0;
    std::uint64_t count = 0;
    void observe(double seconds);
    // The q-quantile (0..1) estimated by linear interpolation in its bucket; nullopt when empty.
    std::optional<double> quantile(double q) const;
  };

  void record(const DispatcherOptions::RunEnd& e);

  // Appends the run metrics in Prometheus text format 0.0.4.
  void write_prometheus(std::string& out) const;
  // {"last_hour": {"done": N, "failed": N, "per_minute": [[done, failed] x 60, oldest first]},
  //  "run_time": {"p50": s, "p90": s, "p99": s}, "start_delay": {...}} (null where no runs).
  nlohmann::json overview() const;

 private:
  struct Minute {
    std::int64_t minute = -1;
    std::uint64_t done = 0, failed = 0;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, std::uint64_t> runs_;  // (handler, outcome) -> count
  std::size_t handlers_ = 0;
  std::map<std::string, bool> handler_seen_;
  Histogram run_time_, start_delay_;
  std::array<Minute, 60> minutes_{};
};

// Prometheus label value escaping: backslash, double quote and newline.
std::string label_value(const std::string& v);

}  // namespace taskpool::http
