// src/store/records.cpp — see records.hpp.
#include "store/records.hpp"

#include <ctime>
#include <sstream>


namespace taskpool::records {

namespace {
[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

// Ids may be numbers or strings; "" (and the origin's 0 / -1 for report targets) mean unset.
std::string id_field(const nlohmann::json& v, const char* name, bool report_target) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) {
    auto n = v.get<long long>();
    if (report_target && (n == 0 || n == -1)) return "";
    return std::to_string(n);
  }
  bad(std::string(name) + " must be a string or an integer");
}
}  // namespace

NewTask task_from_json(const nlohmann::json& j) {
  if (!j.is_object()) bad("a task record must be a JSON object");
  NewTask t;
  for (auto& [k, v] : j.items()) {
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
    else if (k == "unique_key") t.unique_key = str();
    else if (k == "create_time") {
      if (v.is_string()) parse_time(v.get<std::string>());  // validated; the store records its own
      else if (!v.is_number_integer()) bad("create_time must be a time string or epoch seconds");
    } else if (k == "exec_time") {
      if (v.is_string()) t.exec_time = parse_time(v.get<std::string>());
      else if (v.is_number_integer()) t.exec_time = wall_time(std::chrono::seconds(v.get<long long>()));
      else bad("exec_time must be a time string or epoch seconds");
    } else if (k == "task_status") {
      auto s = str();
      if (!parse_task_status(s)) bad("unknown task_status '" + s + "'");
      if (s != "waiting") bad("task_status of a new task must be 'waiting', not '" + s + "'");
    } else if (k == "task_level") {
      if (!v.is_number_integer()) bad("task_level must be an integer " + std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
      auto n = v.get<long long>();
      if (n < kMinTaskLevel || n > kMaxTaskLevel) bad("task_level " + std::to_string(n) + " is outside " + std::to_string(kMinTaskLevel) + ".." + std::to_string(kMaxTaskLevel));
      t.task_level = static_cast<int>(n);
    } else if (k == "payload") {
      t.payload = v.is_string() ? v.get<std::string>() : v.dump();
    } else if (k == "repeat_every") {
      if (v.is_null()) continue;
      if (v.is_string()) t.repeat_every = parse_duration(v.get<std::string>());
      else if (v.is_number_integer() && v.get<long long>() > 0) t.repeat_every = std::chrono::seconds(v.get<long long>());
      else bad("repeat_every must be a duration like \"10m\" or positive seconds");
    } else if (k == "max_attempts") {
      if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > 1000) bad("max_attempts must be an integer 1..1000");
      t.max_attempts = static_cast<int>(v.get<long long>());
    } else {
      bad("unknown field '" + k + "'");
    }
  }
  return t;
}

std::vector<NewTask> tasks_from_text(const std::string& text) {
  std::vector<NewTask> out;
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false, true);
  if (!doc.is_discarded()) {
    if (doc.is_array()) {
      for (auto& e : doc) out.push_back(task_from_json(e));
    } else {
      out.push_back(task_from_json(doc));
    }
    return out;
  }
  // JSON lines: one record per line; blank and // comment lines skipped.
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line.compare(first, 2, "//") == 0) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false, true);
    if (j.is_discarded()) bad("line " + std::to_string(n) + ": malformed JSON");
    try {
      out.push_back(task_from_json(j));
    } catch (const std::invalid_argument& e) {
      bad("line " + std::to_string(n) + ": " + e.what());
    }
  }
  if (out.empty()) bad("no task records in the input");
  return out;
}

nlohmann::json to_json(const TaskRecord& r) {
  nlohmann::json j = {{"id", r.id},
                      {"creator_id", r.creator_id},
                      {"group_id", r.group_id},
                      {"task_type", r.task_type},
                      {"by_plugin", r.by_plugin},
                      {"exec_task", r.exec_task},
                      {"payload", nlohmann::json::parse(r.payload, nullptr, false)},
                      {"create_time", format_time(r.create_time)},
                      {"exec_time", format_time(r.exec_time)},
                      {"task_status", std::string(to_string(r.status))},
                      {"task_level", r.task_level},
                      {"report_user_id", r.report_user_id},
                      {"report_group_id", r.report_group_id},
                      {"attempts", r.attempts},
                      {"max_attempts", r.max_attempts},
                      {"updated_time", format_time(r.updated_time)}};
  j["repeat_every"] = r.repeat_every ? nlohmann::json(std::to_string(r.repeat_every->count()) + "ms") : nlohmann::json();
  j["last_error"] = r.last_error ? nlohmann::json(*r.last_error) : nlohmann::json();
  j["result"] = r.result ? nlohmann::json(*r.result) : nlohmann::json();
  j["unique_key"] = r.unique_key ? nlohmann::json(*r.unique_key) : nlohmann::json();
  j["lease_owner"] = r.lease_owner ? nlohmann::json(*r.lease_owner) : nlohmann::json();
  j["lease_until"] = r.lease_until ? nlohmann::json(format_time(*r.lease_until)) : nlohmann::json();
  return j;
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json j = {{"id", r.id},
                      {"task_id", r.task_id},
                      {"report_user_id", r.report_user_id},
                      {"report_group_id", r.report_group_id},
                      {"status", std::string(to_string(r.status))},
                      {"created_time", format_time(r.created_time)}};
  j["result"] = r.result ? nlohmann::json(*r.result) : nlohmann::json();
  j["error"] = r.error ? nlohmann::json(*r.error) : nlohmann::json();
  return j;
}

}  // namespace taskpool::records
