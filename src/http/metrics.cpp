// src/http/metrics.cpp — see metrics.hpp.
#include "http/metrics.hpp"

#include <algorithm>
#include <cstdio>

namespace taskpool::http {

namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void write_histogram(std::string& out, const char* name, const char* help, const RunMetrics::Histogram& h) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " histogram\n";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < RunMetrics::kBuckets.size(); ++i) {
    cum += h.counts[i];
    out += std::string(name) + "_bucket{le=\"" + number(RunMetrics::kBuckets[i]) + "\"} " + std::to_string(cum) + "\n";
  }
  cum += h.counts.back();
  out += std::string(name) + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += std::string(name) + "_sum " + number(h.sum) + "\n";
  out += std::string(name) + "_count " + std::to_string(h.count) + "\n";
}

}  // namespace

std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void RunMetrics::Histogram::observe(double seconds) {
  seconds = std::max(seconds, 0.0);
  auto it = std::lower_bound(kBuckets.begin(), kBuckets.end(), seconds);
  ++counts[static_cast<std::size_t>(it - kBuckets.begin())];
  sum += seconds;
  ++count;
}

std::optional<double> RunMetrics::Histogram::quantile(double q) const {
  if (count == 0) return std::nullopt;
  const double rank = q * static_cast<double>(count);
  double cum = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    const double next = cum + static_cast<double>(counts[i]);
    if (next >= rank && counts[i] > 0) {
      const double lo = i == 0 ? 0 : kBuckets[i - 1];
      if (i == kBuckets.size()) return lo;  // +Inf bucket: its lower bound is all that is known
      const double hi = kBuckets[i];
      return lo + (hi - lo) * (rank - cum) / static_cast<double>(counts[i]);
    }
    cum = next;
  }
  return kBuckets.back();
}

void RunMetrics::record(const DispatcherOptions::RunEnd& e) {
  const std::string outcome = !e.recorded ? "lost" : e.result.ok ? "done" : "failed";
  const auto minute = std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lk(mu_);
  std::string handler = e.task.handler();
  if (!handler_seen_.count(handler)) {
    if (handlers_ >= kMaxHandlers) handler = "other";
    else handler_seen_[handler] = true, ++handlers_;
  }
  ++runs_[{handler, outcome}];
  run_time_.observe(static_cast<double>(e.run_time.count()) / 1000.0);
  start_delay_.observe(static_cast<double>(e.start_delay.count()) / 1000.0);
  Minute& m = minutes_[static_cast<std::size_t>(minute % 60)];
  if (m.minute != minute) m = Minute{minute, 0, 0};
  if (outcome == "done") ++m.done;
  if (outcome == "failed") ++m.failed;
}

void RunMetrics::write_prometheus(std::string& out) const {
  std::lock_guard lk(mu_);
  out += "# HELP taskpool_runs_total Runs this daemon ended, by handler and outcome (done, failed, lost: the lease was gone).\n";
  out += "# TYPE taskpool_runs_total counter\n";
  for (auto& [k, n] : runs_)
    out += "taskpool_runs_total{handler=\"" + label_value(k.first) + "\",outcome=\"" + k.second + "\"} " + std::to_string(n) + "\n";
  write_histogram(out, "taskpool_run_duration_seconds", "How long handlers ran.", run_time_);
  write_histogram(out, "taskpool_start_delay_seconds", "How late runs started after their planned time.", start_delay_);
}

nlohmann::json RunMetrics::overview() const {
  const auto now_minute =
      std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::lock_guard lk(mu_);
  nlohmann::json per_minute = nlohmann::json::array();
  std::uint64_t done = 0, failed = 0;
  for (std::int64_t m = now_minute - 59; m <= now_minute; ++m) {
    const Minute& slot = minutes_[static_cast<std::size_t>(m % 60)];
    std::uint64_t d = slot.minute == m ? slot.done : 0, f = slot.minute == m ? slot.failed : 0;
    done += d;
    failed += f;
    per_minute.push_back({d, f});
  }
  auto pct = [](const Histogram& h) {
    nlohmann::json j;
    for (auto [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}}) {
      auto v = h.quantile(q);
      j[name] = v ? nlohmann::json(*v) : nlohmann::json();
    }
    return j;
  };
  return {{"last_hour", {{"done", done}, {"failed", failed}, {"per_minute", per_minute}}},
          {"run_time", pct(run_time_)},
          {"start_delay", pct(start_delay_)}};
}

}  // namespace taskpool::http
