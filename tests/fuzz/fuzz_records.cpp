// tests/fuzz/fuzz_records.cpp — libFuzzer target for the task record parser (the `add --json`
// and HTTP input format). Beyond "no crash, no sanitizer report", it checks that input the parser
// accepts is stored as parsed: every accepted record passes the stores' validation, is written to
// a SQLite store and read back with the same fields.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "store/records.hpp"
#include "store/task_rules.hpp"
#include "taskpool/sqlite_store.hpp"

namespace {

taskpool::TaskStore& store() {
  static auto s = taskpool::open_sqlite_store(":memory:");
  return *s;
}

[[noreturn]] void wrong(const char* what) {
  std::fprintf(stderr, "fuzz_records: accepted input stored wrong: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<taskpool::NewTask> tasks;
  try {
    tasks = taskpool::records::tasks_from_text(text);
  } catch (const std::invalid_argument&) {
    return 0;  // refused with a message: fine
  }
  for (const taskpool::NewTask& t : tasks) {
    try {
      taskpool::store::validate(t);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "%s\n", e.what());
      wrong("the parser accepted a record the store refuses");
    }
    taskpool::NewTask plain = t;
    plain.unique_key.clear();  // upserts would merge records; the mapping is what is checked here
    std::int64_t id = 0;
    try {
      id = store().add(plain);
    } catch (const std::invalid_argument& e) {
      std::fprintf(stderr, "%s\n", e.what());
      wrong("the store refused a record the parser accepted");
    }
    auto r = store().get(id);
    if (!r) wrong("the stored record is missing");
    if (r->creator_id != t.creator_id || r->group_id != t.group_id || r->task_type != t.task_type ||
        r->by_plugin != t.by_plugin || r->exec_task != t.exec_task || r->payload != t.payload ||
        r->task_level != t.task_level || r->report_user_id != t.report_user_id ||
        r->report_group_id != t.report_group_id || r->max_attempts != t.max_attempts ||
        r->repeat_every != t.repeat_every)
      wrong("a field changed between parse and read-back");
    if (t.exec_time &&
        std::chrono::floor<std::chrono::milliseconds>(*t.exec_time) != r->exec_time)
      wrong("exec_time changed between parse and read-back");
    // Output never fails on what was stored.
    (void)taskpool::records::dump(taskpool::records::to_json(*r));
  }
  return 0;
}
