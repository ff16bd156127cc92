// src/store/task_rules.cpp — see task_rules.hpp.
#include "store/task_rules.hpp"

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "taskpool/cron.hpp"

namespace taskpool {

std::string_view to_string(TaskStatus s) noexcept {
  switch (s) {
    case TaskStatus::waiting: return "waiting";
    case TaskStatus::running: return "running";
    case TaskStatus::done: return "done";
    case TaskStatus::failed: return "failed";
    case TaskStatus::cancelled: return "cancelled";
  }
  return "waiting";
}

std::optional<TaskStatus> parse_task_status(std::string_view s) noexcept {
  for (TaskStatus t : {TaskStatus::waiting, TaskStatus::running, TaskStatus::done, TaskStatus::failed, TaskStatus::cancelled})
    if (to_string(t) == s) return t;
  return std::nullopt;
}

std::string_view to_string(ReportOn r) noexcept {
  switch (r) {
    case ReportOn::always: return "always";
    case ReportOn::failure: return "failure";
    case ReportOn::never: return "never";
  }
  return "always";
}

std::optional<ReportOn> parse_report_on(std::string_view s) noexcept {
  for (ReportOn r : {ReportOn::always, ReportOn::failure, ReportOn::never})
    if (to_string(r) == s) return r;
  return std::nullopt;
}

namespace store {
namespace {

// Throws unless `s` is UTF-8 (no overlong forms, surrogates, code points above U+10FFFF) without
// NUL bytes: what JSON output, other languages' drivers and C strings can all carry.
[[noreturn]] void bad_text(const char* field, std::size_t at, const char* what) {
  throw std::invalid_argument(std::string(field) + " is not valid UTF-8 text: " + what + " at byte " + std::to_string(at));
}

// The length of the UTF-8 sequence (not NUL) at s[i], or 0 with *what naming the fault.
std::size_t valid_at(const std::string& s, std::size_t i, const char** what) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c == 0) return *what = "a NUL byte", 0;
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0, min = 0;
  if ((c & 0xE0) == 0xC0) n = 2, cp = c & 0x1Fu, min = 0x80;
  else if ((c & 0xF0) == 0xE0) n = 3, cp = c & 0x0Fu, min = 0x800;
  else if ((c & 0xF8) == 0xF0) n = 4, cp = c & 0x07u, min = 0x10000;
  else return *what = "an invalid byte", 0;
  if (i + n > s.size()) return *what = "a truncated sequence", 0;
  for (std::size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return *what = "a truncated sequence", 0;
    cp = (cp << 6) | (cc & 0x3Fu);
  }
  if (cp < min) return *what = "an overlong encoding", 0;
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return *what = "not a Unicode scalar value", 0;
  return n;
}

void check_text(const std::string& s, const char* field) {
  const char* what = "";
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = valid_at(s, i, &what);
    if (n == 0) bad_text(field, i, what);
    i += n;
  }
}

// `s` with each byte that starts no valid sequence (and each NUL) replaced by U+FFFD: a handler's
// result or error is stored as text on every backend (PostgreSQL refuses such bytes, and one bad
// outcome must not fail the group commit that carries it).
std::optional<std::string> as_text(std::optional<std::string> s) {
  if (!s) return s;
  const char* what = "";
  std::size_t i = 0;
  for (std::size_t n; i < s->size() && (n = valid_at(*s, i, &what)) > 0;) i += n;
  if (i == s->size()) return s;
  std::string out = s->substr(0, i);
  while (i < s->size()) {
    const std::size_t n = valid_at(*s, i, &what);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(*s, i, n);
      i += n;
    }
  }
  return out;
}

// A SAX consumer that accepts every value and keeps the parser's error: checks a payload is
// JSON without building it.
struct JsonCheck {
  std::string error;
  using json = nlohmann::json;
  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const json::string_t&) { return true; }
  bool string(json::string_t&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool start_object(std::size_t) { return true; }
  bool key(json::string_t&) { return true; }
  bool end_object() { return true; }
  bool start_array(std::size_t) { return true; }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    error = e.what();
    return false;
  }
};

}  // namespace

void validate(const NewTask& t) {
  check_text(t.creator_id, "creator_id");
  check_text(t.group_id, "group_id");
  check_text(t.task_type, "task_type");
  check_text(t.by_plugin, "by_plugin");
  check_text(t.exec_task, "exec_task");
  check_text(t.report_user_id, "report_user_id");
  check_text(t.report_group_id, "report_group_id");
  check_text(t.unique_key, "unique_key");
  check_text(t.payload, "payload");
  JsonCheck check;
  if (!nlohmann::json::sax_parse(t.payload, &check)) {
    // nlohmann's message, less its "[json.exception.parse_error.101] " tag.
    auto tag = check.error.find("] ");
    throw std::invalid_argument("payload is not valid JSON: " + (tag == std::string::npos ? check.error : check.error.substr(tag + 2)));
  }
  if (t.exec_time) check_time(*t.exec_time, "exec_time");
  if (t.repeat_every) check_duration(*t.repeat_every, "repeat_every");
  if (t.task_level < kMinTaskLevel || t.task_level > kMaxTaskLevel)
    throw std::invalid_argument("task_level " + std::to_string(t.task_level) + " is outside " +
                                std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
  if (t.max_attempts < 1) throw std::invalid_argument("max_attempts must be at least 1");
  if (t.repeat_every && t.repeat_every->count() <= 0) throw std::invalid_argument("repeat_every must be positive");
  if (t.exec_task.empty() && t.task_type.empty())
    throw std::invalid_argument("a task needs exec_task (its handler) or task_type");
  check_text(t.cron, "cron");
  check_text(t.tz, "tz");
  if (!t.tz.empty() && t.cron.empty()) throw std::invalid_argument("tz needs cron (it is the zone of the cron schedule)");
  if (!t.cron.empty()) {
    if (t.repeat_every) throw std::invalid_argument("cron and repeat_every exclude each other");
    // CronSchedule's message names the field and the text ("cron: hour field: '24' ...",
    // "cron: tz: unknown time zone '...'").
    first_occurrence(t.cron, t.tz, std::chrono::system_clock::now());
  }
  if (t.debounce) {
    check_duration(*t.debounce, "debounce");
    if (t.debounce->count() <= 0) throw std::invalid_argument("debounce must be positive");
    if (t.unique_key.empty()) throw std::invalid_argument("debounce needs unique_key (the task each upsert re-arms)");
    if (t.exec_time) throw std::invalid_argument("debounce and exec_time exclude each other (debounce sets exec_time to now + debounce)");
  }
  if (t.max_wait) {
    check_duration(*t.max_wait, "max_wait");
    if (!t.debounce) throw std::invalid_argument("max_wait needs debounce");
    if (*t.max_wait < *t.debounce) throw std::invalid_argument("max_wait must be at least debounce");
  }
}

wall_time first_occurrence(const std::string& cron, const std::string& tz, wall_time now) {
  auto next = CronSchedule::parse(cron, tz).next(now);
  if (!next || *next >= kMaxTime) return kMaxTime;
  return std::chrono::time_point_cast<wall_time::duration>(*next);
}

wall_time next_occurrence(const TaskRecord& t, wall_time planned, wall_time now) {
  using std::chrono::milliseconds;
  auto ms = [](wall_time w) { return std::chrono::duration_cast<milliseconds>(w.time_since_epoch()).count(); };
  if (!t.cron.empty()) return first_occurrence(t.cron, t.tz, std::max(planned, now));
  if (t.repeat_every)
    if (auto next = next_slot(ms(planned), t.repeat_every->count(), ms(now))) return wall_time(milliseconds(*next));
  return kMaxTime;
}

std::optional<std::int64_t> next_slot(std::int64_t slot, std::int64_t every, std::int64_t now) {
  using std::chrono::milliseconds;
  const std::int64_t max = std::chrono::duration_cast<milliseconds>(kMaxTime.time_since_epoch()).count();
  // Inside the range no sum below overflows: slot, now < kMaxTime and every <= kMaxDuration.
  if (every <= 0 || every > kMaxDuration.count() || slot < 0 || slot >= max || now >= max) return std::nullopt;
  std::int64_t next = slot + every;
  if (next <= now) next = slot + ((now - slot) / every + 1) * every;  // missed slots are skipped
  if (next >= max) return std::nullopt;
  return next;
}

std::int64_t backoff_ms(int attempts, const RetryPolicy& p, double u) {
  double d = static_cast<double>(p.base.count());
  for (int i = 1; i < attempts && d < static_cast<double>(p.max.count()); ++i) d *= 2;
  d = std::min(d, static_cast<double>(p.max.count()));
  d *= 1.0 + p.jitter * u;
  d = std::min(d, static_cast<double>(kMaxDuration.count()));  // a huge policy cannot leave the time range
  return std::max<std::int64_t>(0, static_cast<std::int64_t>(d));
}

void sort_claim_order(std::vector<TaskRecord>& claimed) {
  std::sort(claimed.begin(), claimed.end(), [](const TaskRecord& a, const TaskRecord& b) {
    if (a.task_level != b.task_level) return a.task_level > b.task_level;
    if (a.exec_time != b.exec_time) return a.exec_time < b.exec_time;
    return a.id < b.id;
  });
}

void count_status(StoreStats& st, std::string_view status, std::int64_t n) {
  auto s = parse_task_status(status);
  if (!s) return;
  switch (*s) {
    case TaskStatus::waiting: st.waiting = n; break;
    case TaskStatus::running: st.running = n; break;
    case TaskStatus::done: st.done = n; break;
    case TaskStatus::failed: st.failed = n; break;
    case TaskStatus::cancelled: st.cancelled = n; break;
  }
}

RunEnd end_of_run(const TaskRecord& claimed, const RunResult& outcome, const RetryPolicy& retry, double u,
                  bool rearmed, std::int64_t row_exec_time, std::int64_t now) {
  using std::chrono::milliseconds;
  const std::int64_t max = std::chrono::duration_cast<milliseconds>(kMaxTime.time_since_epoch()).count();
  const std::int64_t slot =
      std::chrono::duration_cast<milliseconds>(claimed.planned_time.value_or(claimed.exec_time).time_since_epoch()).count();
  RunEnd e;
  // A run ends its debounce window (the next arm starts a new one), unless an upsert opened a
  // new window during the run, or the run was only interrupted.
  e.ends_debounce_window = !rearmed && !outcome.interrupted;
  if (outcome.ok) e.result = as_text(outcome.result);
  else e.error = as_text(outcome.error);
  e.exec_time = row_exec_time;
  e.attempts = claimed.attempts;  // the runs of this occurrence stay visible (#11.9)
  if (outcome.interrupted && !outcome.ok) {
    // Stopped by shutdown: back to waiting at the same time; the attempt does not count.
    e.status = TaskStatus::waiting;
    e.attempts = rearmed ? 0 : std::max(claimed.attempts - 1, 0);
    if (!rearmed && claimed.planned_time) e.planned_time = slot;
    return e;
  }
  const bool retrying = !outcome.ok && !rearmed && outcome.retryable && claimed.attempts < claimed.max_attempts;
  if (!retrying) e.report = outcome.ok ? TaskStatus::done : TaskStatus::failed;
  if (rearmed) {
    // An upsert changed the task during the run: it waits for its (new) time, whatever this
    // run's outcome; the outcome is still recorded and reported.
    e.status = TaskStatus::waiting;
    e.attempts = 0;
  } else if (retrying) {
    e.status = TaskStatus::waiting;
    e.exec_time = std::min(now + backoff_ms(claimed.attempts, retry, u), max - 1);
    e.planned_time = slot;  // the retry still belongs to its planned slot
  } else if (claimed.repeats()) {
    // The series goes on at its next occurrence after the planned one (the grid, or the cron
    // schedule's next instant after max(planned, now)), whatever this run's outcome.
    std::int64_t next = max;
    std::string why = "the next slot of this repeating task is past 2199-12-31 (the supported time range); the series ends";
    try {
      next = std::chrono::duration_cast<milliseconds>(
                 next_occurrence(claimed, wall_time(milliseconds(slot)), wall_time(milliseconds(now))).time_since_epoch())
                 .count();
    } catch (const std::invalid_argument& ex) {
      why = std::string("the schedule cannot be read (") + ex.what() + "); the series ends";
    }
    if (next < max) {
      e.status = TaskStatus::waiting;
      e.exec_time = next;
      e.attempts = 0;
    } else {
      e.status = TaskStatus::failed;
      e.error = why;
      e.report = TaskStatus::failed;
    }
  } else {
    e.status = outcome.ok ? TaskStatus::done : TaskStatus::failed;
  }
  return e;
}

}  // namespace store
}  // namespace taskpool
