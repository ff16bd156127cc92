// src/store/records.cpp — see records.hpp.
#include "store/records.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <sstream>

#include "store/task_rules.hpp"

namespace taskpool::records {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

// Deeper input is refused (SQLite's JSON functions refuse it too, and dumping it recurses).
constexpr std::size_t kMaxDepth = 1000;

constexpr std::int64_t kMaxSeconds =
    std::chrono::duration_cast<std::chrono::seconds>(kMaxTime.time_since_epoch()).count();

// Builds a json value from nlohmann's SAX events, with a depth limit; with a stream, it notes
// where each record starts (the stream's offset when the record's first token was read).
class Builder {
 public:
  explicit Builder(std::istream* in = nullptr) : in_(in) {}

  json root;
  std::streamoff root_at = 0;
  std::vector<std::streamoff> element_at;  // of each element of a top-level array
  bool started = false;                    // any value seen
  bool too_deep = false;
  std::streamoff deep_at = 0;
  std::size_t error_pos = 0;  // characters read by this parse when it failed
  std::string error;

  bool null() { return put(json(nullptr)); }
  bool boolean(bool v) { return put(json(v)); }
  bool number_integer(json::number_integer_t v) { return put(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return put(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t&) { return put(json(v)); }
  bool string(json::string_t& v) { return put(json(std::move(v))); }
  bool binary(json::binary_t&) { return put(json()); }  // never produced by JSON text
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t pos, const std::string&, const json::exception& e) {
    error_pos = pos;
    error = e.what();
    return false;
  }

 private:
  std::streamoff offset() const {
    return in_ ? static_cast<std::streamoff>(in_->rdbuf()->pubseekoff(0, std::ios_base::cur, std::ios_base::in)) : 0;
  }
  json* place(json&& v) {
    started = true;
    // The token was just read: one character back is where a container (or about where a
    // scalar) starts.
    std::streamoff at = offset() > 0 ? offset() - 1 : 0;
    if (stack_.empty()) {
      root = std::move(v);
      root_at = at;
      return &root;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      if (stack_.size() == 1) element_at.push_back(at);
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];  // a repeated key: the last one wins, as json::parse does
    slot = std::move(v);
    return &slot;
  }
  bool put(json&& v) {
    place(std::move(v));
    return true;
  }
  bool open(json&& v) {
    if (stack_.size() >= kMaxDepth) {
      too_deep = true;
      deep_at = offset() > 0 ? offset() - 1 : 0;
      return false;
    }
    stack_.push_back(place(std::move(v)));
    return true;
  }

  std::istream* in_;
  std::vector<json*> stack_;
  std::string key_;
};

// "line L, column C" of a byte offset in text (both 1-based).
std::string where(const std::string& text, std::streamoff off) {
  std::size_t end = std::min(text.size(), static_cast<std::size_t>(std::max<std::streamoff>(off, 0)));
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < end; ++i)
    if (text[i] == '\n') ++line, line_start = i + 1;
  return "line " + std::to_string(line) + ", column " + std::to_string(end - line_start + 1);
}

// nlohmann's message without its tag and its own (per-value) position.
std::string reason(const std::string& what) {
  std::string r = what;
  if (auto tag = r.find("] "); tag != std::string::npos) r = r.substr(tag + 2);
  if (r.rfind("parse error", 0) == 0)
    if (auto colon = r.find(": "); colon != std::string::npos) r = r.substr(colon + 2);
  return r;
}

// An integer json value (signed or unsigned), saturated to int64: no wrap-around to small values.
std::int64_t int_value(const json& v) {
  if (v.is_number_unsigned()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v.get<std::uint64_t>(), INT64_MAX));
  return v.get<std::int64_t>();
}

// Ids may be numbers or strings; "" (and the origin's 0 / -1 for report targets) mean unset.
std::string id_field(const json& v, const char* name, bool report_target) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_unsigned()) return report_target && v.get<std::uint64_t>() == 0 ? "" : std::to_string(v.get<std::uint64_t>());
  if (v.is_number_integer()) {
    auto n = v.get<std::int64_t>();
    if (report_target && (n == 0 || n == -1)) return "";
    return std::to_string(n);
  }
  bad(std::string(name) + " must be a string or an integer");
}

// Epoch seconds -> time, refused outside the range before anything can overflow.
wall_time epoch_time(const json& v, const char* field) {
  std::int64_t s = int_value(v);
  if (s >= 0 && s < kMaxSeconds) return wall_time(std::chrono::seconds(s));
  check_time(kMaxTime, field);  // a negative or too large number: throws the range message
  return kMaxTime;
}

wall_time time_field(const json& v, const char* field) {
  if (v.is_string()) return parse_time(v.get<std::string>(), field);
  if (v.is_number_integer()) return epoch_time(v, field);
  bad(std::string(field) + " must be a time string or epoch seconds");
}

// Parses stored text as JSON (strict, depth-limited); nullopt when it is not JSON.
std::optional<json> parse_stored(const std::string& text) {
  Builder b;
  if (!json::sax_parse(text, &b)) return std::nullopt;
  return std::move(b.root);
}

// A duration: text like "10m" (parse_duration) or positive seconds; null is unset.
std::optional<std::chrono::milliseconds> duration_field(const json& v, const char* field) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return parse_duration(v.get<std::string>(), field);
  if (v.is_number_integer() && int_value(v) > 0) {
    auto s = int_value(v);
    if (s > kMaxDuration.count() / 1000) check_duration(kMaxDuration + std::chrono::milliseconds(1), field);
    return std::chrono::seconds(s);
  }
  bad(std::string(field) + " must be a duration like \"10m\" or positive seconds");
}

json duration_text(const std::optional<std::chrono::milliseconds>& d) {
  return d ? json(std::to_string(d->count()) + "ms") : json();
}

json opt(const std::optional<std::string>& s) { return s ? json(*s) : json(); }
json opt(const std::optional<wall_time>& t) { return t ? json(format_time_precise(*t)) : json(); }

}  // namespace

NewTask task_from_json(const json& j) {
  if (!j.is_object()) bad("a task record must be a JSON object");
  NewTask t;
  for (auto it = j.begin(); it != j.end(); ++it) {
    // Named references, not structured bindings: Clang 14 cannot capture those in the lambda.
    const std::string& k = it.key();
    const json& v = it.value();
    auto str = [&]() -> std::string {
      if (!v.is_string()) bad(k + " must be a string");
      return v.get<std::string>();
    };
    if (k == "creator_id") t.creator_id = id_field(v, "creator_id", false);
    else if (k == "group_id") t.group_id = id_field(v, "group_id", false);
    else if (k == "report_user_id") t.report_user_id = id_field(v, "report_user_id", true);
    else if (k == "report_group_id") t.report_group_id = id_field(v, "report_group_id", true);
    else if (k == "task_type") t.task_type = str();
    else if (k == "by_plugin") t.by_plugin = str();
    else if (k == "exec_task") t.exec_task = str();
    else if (k == "unique_key") t.unique_key = v.is_null() ? "" : str();
    else if (k == "create_time") time_field(v, "create_time");  // checked; the store records its own
    else if (k == "exec_time") t.exec_time = time_field(v, "exec_time");
    else if (k == "task_status") {
      auto s = str();
      if (!parse_task_status(s)) bad("unknown task_status '" + s + "'");
      if (s != "waiting") bad("task_status of a new task must be 'waiting', not '" + s + "' (it cannot be set)");
    } else if (k == "task_level") {
      if (!v.is_number_integer()) bad("task_level must be an integer " + std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
      auto n = int_value(v);
      if (n < kMinTaskLevel || n > kMaxTaskLevel) bad("task_level " + std::to_string(n) + " is outside " + std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
      t.task_level = static_cast<int>(n);
    } else if (k == "payload") {
      // A string holds the payload's JSON text (as a table column would); anything else is the payload.
      if (v.is_string()) {
        t.payload = v.get<std::string>();
        if (!parse_stored(t.payload)) bad("payload: a string payload must hold JSON text, e.g. \"{\\\"text\\\": \\\"hi\\\"}\"");
      } else {
        t.payload = v.dump();
      }
    } else if (k == "repeat_every") {
      t.repeat_every = duration_field(v, "repeat_every");
    } else if (k == "debounce") {
      t.debounce = duration_field(v, "debounce");
    } else if (k == "max_wait") {
      t.max_wait = duration_field(v, "max_wait");
    } else if (k == "cron") {
      t.cron = v.is_null() ? "" : str();
    } else if (k == "tz") {
      t.tz = v.is_null() ? "" : str();
    } else if (k == "max_attempts") {
      if (!v.is_number_integer() || int_value(v) < 1 || int_value(v) > 1000) bad("max_attempts must be an integer 1..1000");
      t.max_attempts = static_cast<int>(int_value(v));
    } else if (k == "report_on") {
      if (v.is_null()) continue;
      auto s = str();
      t.report_on = parse_report_on(s);
      if (!t.report_on) bad("report_on must be always, failure or never, not '" + s + "'");
    } else if (k == "id" || k == "attempts" || k == "last_error" || k == "result" || k == "lease_owner" ||
               k == "lease_until" || k == "updated_time" || k == "planned_time" || k == "debounce_start") {
      continue;  // read-only: what the table keeps about runs (see records.hpp)
    } else {
      bad("unknown field '" + k + "'");
    }
  }
  store::validate(t);
  return t;
}

std::vector<NewTask> tasks_from_text(const std::string& text, const std::function<void(const NewTask&)>& check) {
  std::vector<NewTask> out;
  std::istringstream in(text);
  auto take = [&](const json& v, std::streamoff at) {
    try {
      NewTask t = task_from_json(v);
      if (check) check(t);
      out.push_back(std::move(t));
    } catch (const std::invalid_argument& e) {
      bad("record at " + where(text, at) + ": " + e.what());
    }
  };
  // One value per parse: a non-strict parse stops after the value, where the next one begins.
  for (;;) {
    std::streamoff start = in.rdbuf()->pubseekoff(0, std::ios_base::cur, std::ios_base::in);
    Builder b(&in);
    if (!json::sax_parse(static_cast<std::istream&>(in), &b, json::input_format_t::json, /*strict=*/false, /*ignore_comments=*/true)) {
      if (b.too_deep) bad(where(text, b.deep_at) + ": nesting deeper than " + std::to_string(kMaxDepth) + " levels");
      // Nothing but whitespace and comments was left: the stream has ended.
      if (!b.started && b.error.find("unexpected end of input") != std::string::npos) break;
      std::streamoff at = start + static_cast<std::streamoff>(b.error_pos) - 1;
      bad(where(text, at) + ": malformed JSON: " + reason(b.error));
    }
    if (b.root.is_array()) {
      for (std::size_t i = 0; i < b.root.size(); ++i) take(b.root[i], b.element_at[i]);
    } else {
      take(b.root, b.root_at);
    }
  }
  if (out.empty()) bad("no task records in the input");
  return out;
}

json to_json(const TaskRecord& r) {
  // A payload that is not JSON (stored by another program) or is a JSON string shows as its text,
  // which task_from_json reads back as the same payload.
  auto payload = parse_stored(r.payload);
  json j = {{"id", r.id},
            {"creator_id", r.creator_id},
            {"group_id", r.group_id},
            {"task_type", r.task_type},
            {"by_plugin", r.by_plugin},
            {"exec_task", r.exec_task},
            {"payload", payload && !payload->is_string() ? std::move(*payload) : json(r.payload)},
            {"create_time", format_time_precise(r.create_time)},
            {"exec_time", format_time_precise(r.exec_time)},
            {"task_status", std::string(to_string(r.status))},
            {"task_level", r.task_level},
            {"report_user_id", r.report_user_id},
            {"report_group_id", r.report_group_id},
            {"attempts", r.attempts},
            {"max_attempts", r.max_attempts},
            {"updated_time", format_time_precise(r.updated_time)}};
  j["repeat_every"] = duration_text(r.repeat_every);
  j["cron"] = r.cron.empty() ? json() : json(r.cron);
  j["tz"] = r.tz.empty() ? json() : json(r.tz);
  j["debounce"] = duration_text(r.debounce);
  j["max_wait"] = duration_text(r.max_wait);
  j["debounce_start"] = opt(r.debounce_start);
  j["report_on"] = r.report_on ? json(std::string(to_string(*r.report_on))) : json();
  j["last_error"] = opt(r.last_error);
  j["result"] = opt(r.result);
  j["unique_key"] = opt(r.unique_key);
  j["lease_owner"] = opt(r.lease_owner);
  j["lease_until"] = opt(r.lease_until);
  j["planned_time"] = opt(r.planned_time);
  return j;
}

json to_json(const Report& r) {
  json j = {{"id", r.id},
            {"task_id", r.task_id},
            {"report_user_id", r.report_user_id},
            {"report_group_id", r.report_group_id},
            {"status", std::string(to_string(r.status))},
            {"created_time", format_time_precise(r.created_time)}};
  j["result"] = opt(r.result);
  j["error"] = opt(r.error);
  j["acked_time"] = opt(r.acked_time);
  return j;
}

std::string dump(const json& j, int indent) { return j.dump(indent, ' ', false, json::error_handler_t::replace); }

std::string printable(std::string_view text) {
  std::string out;
  auto escape = [&](unsigned char c) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  };
  for (std::size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) escape(c);
      else out += static_cast<char>(c);
      ++i;
      continue;
    }
    // The length of a well-formed sequence starting here (RFC 3629), or 0.
    std::size_t n = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    for (std::size_t k = 1; n && k < n; ++k) {
      if (i + k >= text.size()) n = 0;
      else {
        auto cc = static_cast<unsigned char>(text[i + k]);
        unsigned char lo = 0x80, hi = 0xBF;
        if (k == 1 && c == 0xE0) lo = 0xA0;
        if (k == 1 && c == 0xED) hi = 0x9F;
        if (k == 1 && c == 0xF0) lo = 0x90;
        if (k == 1 && c == 0xF4) hi = 0x8F;
        if (cc < lo || cc > hi) n = 0;
      }
    }
    if (n == 0) {
      escape(c);
      ++i;
    } else {
      out.append(text.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace taskpool::records
