// src/store/records.hpp — the task record mapping: JSON <-> NewTask / TaskRecord / Report.
// Part of the store layer, shared by the command and the HTTP API (the one place that knows the
// record format's field names); internal to taskpool (its API uses nlohmann::json).
//
// Origin records (../shared/origin notes) are accepted as they are: a stream of JSON values
// (objects one after another, with or without whitespace, arrays of objects, JSON lines) with
// `//` and `/* */` comments, "" for unset ids, numbers or strings for ids, "2021-11-26 10:13:14"
// times (local time unless an offset is given; epoch seconds also accepted). Every function
// throws std::invalid_argument with a one-line message naming the field (and, for text, the line
// and column) for bad input; a record that task_from_json accepts passes store::validate.
//
// Round trip: to_json(TaskRecord) fed back to task_from_json describes the same task. What the
// table keeps about runs is read-only and ignored on input: id, attempts, last_error, result,
// lease_owner, lease_until, planned_time, debounce_start, create_time (checked, then the insert time is stored),
// updated_time.
// task_status must be "waiting": a finished task's record is refused (drop the field to copy it).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "taskpool/store.hpp"
#include "taskpool/time_text.hpp"

namespace taskpool::records {

// One origin-style record (a JSON object) -> NewTask.
NewTask task_from_json(const nlohmann::json& j);
// Every record of a stream of JSON values (see above). `check`, when given, runs on each record
// as it is read, so what it throws is reported with the record's line and column too.
std::vector<NewTask> tasks_from_text(const std::string& text, const std::function<void(const NewTask&)>& check = {});

// Never throw, whatever another program stored: a payload that is not JSON (or is a JSON
// string) is given as its text; times are format_time_precise.
nlohmann::json to_json(const TaskRecord& r);
nlohmann::json to_json(const Report& r);

// j as text for output. Never throws: bytes that are not UTF-8 (rows another program wrote)
// become U+FFFD.
std::string dump(const nlohmann::json& j, int indent = -1);

// `text` safe for a one-line message: control bytes and bytes that are not UTF-8 as \xNN.
std::string printable(std::string_view text);

}  // namespace taskpool::records
