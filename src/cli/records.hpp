// src/cli/records.hpp — turning command-line and JSON input into NewTask (private to the CLI).
//
// Origin records (../shared/origin notes) are accepted as they are: `//` comment lines, ""
// for unset ids, numbers or strings for ids, "2021-11-26 10:13:14" times (local time unless an
// offset is given; epoch seconds also accepted). Every function throws std::invalid_argument with
// a message naming the field for bad input.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "taskpool/store.hpp"

namespace taskpool::cli {

// "2021-11-26 10:13:14" (local), "2021-11-26T10:13:14+08:00", "...Z", fractional seconds,
// or an integer number of seconds since the epoch.
wall_time parse_time(const std::string& text);
std::string format_time(wall_time t);  // local time, "YYYY-MM-DD HH:MM:SS"

// One origin-style record (a JSON object) -> NewTask.
NewTask task_from_json(const nlohmann::json& j);
// A JSON document (object or array of objects, `//` comments allowed) or JSON lines.
std::vector<NewTask> tasks_from_text(const std::string& text);

nlohmann::json to_json(const TaskRecord& r);
nlohmann::json to_json(const Report& r);

}  // namespace taskpool::cli
