// src/store/records.hpp — the task record mapping: JSON <-> NewTask / TaskRecord / Report.
// Part of the store layer, shared by the command and the HTTP API (the one place that knows the
// record format's field names); internal to taskpool (its API uses nlohmann::json).
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
#include "taskpool/time_text.hpp"

namespace taskpool::records {

// One origin-style record (a JSON object) -> NewTask.
NewTask task_from_json(const nlohmann::json& j);
// A JSON document (object or array of objects, `//` comments allowed) or JSON lines.
std::vector<NewTask> tasks_from_text(const std::string& text);

nlohmann::json to_json(const TaskRecord& r);
nlohmann::json to_json(const Report& r);

}  // namespace taskpool::records
