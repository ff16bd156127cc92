// tests/records_test.cpp — unit tests of the record mapping (src/store/records.hpp), the time and
// duration parsers (taskpool/time_text.hpp) and the store-independent task validation
// (store::validate): what every entry point (command, records, C++ API) accepts and refuses.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "store/records.hpp"
#include "store/task_rules.hpp"
#include "taskpool/time_text.hpp"

namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using taskpool::parse_duration;
using taskpool::parse_time;
using taskpool::wall_time;

std::int64_t epoch_s(wall_time t) { return duration_cast<seconds>(t.time_since_epoch()).count(); }

// Sets TZ for one test (the parsers read the process's zone) and restores it.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }

 private:
  std::optional<std::string> old_;
};

// A message names what it is about (the refused text), on one line.
void expect_refused(const std::string& text) {
  try {
    parse_time(text);
    ADD_FAILURE() << "accepted '" << text << "'";
  } catch (const std::invalid_argument& e) {
    std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

// Invariant (#11.8): a date or time that does not exist is refused, never moved to another one.
TEST(ParseTime, RefusesImpossibleDates) {
  for (const char* t : {"2021-02-30 10:00:00Z", "2021-02-29 10:00:00Z", "2100-02-29 00:00:00Z", "2021-04-31 10:00:00Z",
                        "2021-06-31 10:00:00", "2021-01-01 24:00:00Z", "2021-01-01 23:60:00Z", "2021-01-01 23:59:60Z",
                        "2021-13-01 10:00:00Z", "2021-00-10 10:00:00Z", "2021-01-00 10:00:00Z", "2021-02-30 10:00:00"})
    expect_refused(t);
  EXPECT_EQ(epoch_s(parse_time("2024-02-29 12:00:00Z")), 1709208000);  // leap years
  EXPECT_EQ(epoch_s(parse_time("2000-02-29 00:00:00Z")), 951782400);
  EXPECT_EQ(epoch_s(parse_time("2021-12-31T23:59:59Z")), 1640995199);
}

// Invariant (#11.8): offsets are real ones: within ±14:00, minutes below 60.
TEST(ParseTime, Offsets) {
  EXPECT_EQ(epoch_s(parse_time("2021-06-01 14:00:00+14:00")), epoch_s(parse_time("2021-06-01 00:00:00Z")));
  EXPECT_EQ(epoch_s(parse_time("2021-06-01 00:00:00-12:00")), epoch_s(parse_time("2021-06-01 12:00:00Z")));
  EXPECT_EQ(epoch_s(parse_time("2021-06-01 05:30:00+0530")), epoch_s(parse_time("2021-06-01 00:00:00Z")));
  for (const char* t : {"2021-06-01 00:00:00+14:01", "2021-06-01 00:00:00+15:00", "2021-06-01 00:00:00-14:30",
                        "2021-06-01 00:00:00+05:60", "2021-06-01 00:00:00+5:00", "2021-06-01 00:00:00+05:", "2021-06-01 00:00:00Zx"})
    expect_refused(t);
}

// Invariant (#16.5): times outside [1970, 2200) are refused whatever their form, so nothing
// wraps around system_clock's 2262 limit.
TEST(ParseTime, RefusesTimesOutOfRange) {
  for (const char* t : {"2300-01-01 00:00:00Z", "2200-01-01 00:00:00Z", "9999-12-31 23:59:59Z", "1969-12-31 23:59:59Z",
                        "99999999999", "7258118400", "0000-01-01 00:00:00Z", "2199-12-31 23:59:59-01:00"})
    expect_refused(t);
  EXPECT_EQ(parse_time("2199-12-31 23:59:59.999Z"), taskpool::kMaxTime - 1ms);
  EXPECT_EQ(parse_time("1970-01-01 00:00:00Z"), taskpool::kMinTime);
  EXPECT_EQ(epoch_s(parse_time("7258118399")), 7258118399);
}

// Invariant (#11.8): fractional seconds give milliseconds (finer digits are cut, not rounded
// into the next second); an empty or overlong fraction is refused.
TEST(ParseTime, FractionalSeconds) {
  EXPECT_EQ(parse_time("2021-06-01 00:00:00.5Z") - parse_time("2021-06-01 00:00:00Z"), 500ms);
  EXPECT_EQ(parse_time("2021-06-01 00:00:00.999999999Z") - parse_time("2021-06-01 00:00:00Z"), 999ms);
  expect_refused("2021-06-01 00:00:00.Z");
  expect_refused("2021-06-01 00:00:00.1234567890Z");
}

// Invariant (#11.8): a local time skipped by a daylight-saving change does not exist and is
// refused; a repeated one (clocks going back) is the earlier of the two instants.
TEST(ParseTime, LocalTimesAroundDaylightSaving) {
  ScopedTz tz("CET-1CEST,M3.5.0,M10.5.0/3");
  expect_refused("2021-03-28 02:30:00");
  EXPECT_EQ(epoch_s(parse_time("2021-03-28 01:30:00")), epoch_s(parse_time("2021-03-28 00:30:00Z")));
  EXPECT_EQ(epoch_s(parse_time("2021-03-28 03:30:00")), epoch_s(parse_time("2021-03-28 01:30:00Z")));
  EXPECT_EQ(epoch_s(parse_time("2021-10-31 02:30:00")), epoch_s(parse_time("2021-10-31 00:30:00Z")));
  EXPECT_EQ(epoch_s(parse_time("2021-07-01 12:00:00")), epoch_s(parse_time("2021-07-01 10:00:00Z")));
}

// Invariant (fuzz-hardening): any text either parses to a time in range or is refused with
// std::invalid_argument; nothing else escapes, nothing crashes (mutations of valid times).
TEST(ParseTime, ArbitraryTextNeverEscapesTheRange) {
  std::mt19937 rng(7);
  const std::string seeds[] = {"2021-11-26 10:13:14", "2021-11-26T10:13:14.123+08:00", "2199-12-31 23:59:59Z", "1637892794"};
  const std::string alphabet = "0123456789-:T Z+.\x00\xff";
  for (int i = 0; i < 20000; ++i) {
    std::string t = seeds[rng() % 4];
    for (int k = static_cast<int>(rng() % 4); k >= 0; --k) {
      std::size_t at = rng() % (t.size() + 1);
      switch (rng() % 3) {
        case 0: t.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        case 1: if (at < t.size()) t.erase(at, 1); break;
        default: if (at < t.size()) t[at] = alphabet[rng() % alphabet.size()]; break;
      }
    }
    try {
      wall_time w = parse_time(t);
      EXPECT_TRUE(w >= taskpool::kMinTime && w < taskpool::kMaxTime) << t;
    } catch (const std::invalid_argument&) {
    }
  }
}

// Invariant (#16.5): durations beyond kMaxDuration are refused, including sums that would
// overflow; every accepted one lies in [0, kMaxDuration].
TEST(ParseDuration, Range) {
  EXPECT_EQ(parse_duration("18250d"), taskpool::kMaxDuration);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("0s"), 0ms);
  EXPECT_EQ(parse_duration("1576800000000ms"), taskpool::kMaxDuration);
  std::string huge;
  for (int i = 0; i < 20; ++i) huge += "1000000000d";
  for (const std::string& d : {std::string("18251d"), std::string("110000d"), std::string("9223372036854775807ms"),
                               std::string("18250d1ms"), huge, std::string("1576800000001ms")})
    EXPECT_THROW(parse_duration(d), std::invalid_argument) << d;
  for (const char* d : {"", "s", "1x", "1h30", "-1s", "1.5h", " 1s"}) EXPECT_THROW(parse_duration(d), std::invalid_argument) << d;
}

taskpool::NewTask valid_task() {
  taskpool::NewTask t;
  t.task_type = "memo";
  return t;
}

// Invariant (#16.5): the C++ API refuses what the command refuses: exec_time outside the range,
// repeat_every outside (0, kMaxDuration].
TEST(Validate, RefusesTimesOutOfRange) {
  auto t = valid_task();
  t.exec_time = taskpool::kMaxTime - 1ms;
  t.repeat_every = taskpool::kMaxDuration;
  EXPECT_NO_THROW(taskpool::store::validate(t));
  t.exec_time = taskpool::kMaxTime;
  EXPECT_THROW(taskpool::store::validate(t), std::invalid_argument);
  t.exec_time = wall_time(-1s);
  EXPECT_THROW(taskpool::store::validate(t), std::invalid_argument);
  t.exec_time.reset();
  t.repeat_every = taskpool::kMaxDuration + 1ms;
  EXPECT_THROW(taskpool::store::validate(t), std::invalid_argument);
}

// Invariant (#11.1): every text field is valid UTF-8 (no overlong forms, surrogates, code points
// above U+10FFFF or NUL bytes); the error names the field.
TEST(Validate, RefusesInvalidUtf8NamingTheField) {
  using Field = std::string taskpool::NewTask::*;
  const std::pair<Field, const char*> fields[] = {
      {&taskpool::NewTask::creator_id, "creator_id"},       {&taskpool::NewTask::group_id, "group_id"},
      {&taskpool::NewTask::task_type, "task_type"},         {&taskpool::NewTask::by_plugin, "by_plugin"},
      {&taskpool::NewTask::exec_task, "exec_task"},         {&taskpool::NewTask::report_user_id, "report_user_id"},
      {&taskpool::NewTask::report_group_id, "report_group_id"}, {&taskpool::NewTask::unique_key, "unique_key"}};
  const std::string bad[] = {"al\xff" "ice", "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82", "\xf4\x90\x80\x80", "\x80",
                             std::string("a\0b", 3)};
  for (auto& [field, name] : fields) {
    for (const std::string& b : bad) {
      auto t = valid_task();
      t.*field = b;
      try {
        taskpool::store::validate(t);
        ADD_FAILURE() << name << " accepted";
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
      }
    }
    auto t = valid_task();
    t.*field = "日本語 ✓ \xf0\x9f\x98\x80";  // valid multi-byte text
    EXPECT_NO_THROW(taskpool::store::validate(t)) << name;
  }
  auto t = valid_task();
  t.payload = "{\"text\": \"caf\xe9\"}";
  try {
    taskpool::store::validate(t);
    ADD_FAILURE() << "payload accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("payload"), std::string::npos) << e.what();
  }
}

// Invariant (#11.7): a stream of JSON values is read: commented objects one after another,
// with or without whitespace, arrays of records, JSON lines.
TEST(Records, StreamOfValues) {
  EXPECT_EQ(taskpool::records::tasks_from_text("// one\n{\"task_type\": \"a\"}\n\n// two\n{\n  \"task_type\": \"b\"\n}\n").size(), 2u);
  EXPECT_EQ(taskpool::records::tasks_from_text(R"({"task_type":"a"}{"task_type":"b"})").size(), 2u);
  auto mixed = taskpool::records::tasks_from_text("[{\"task_type\": \"a\"}, {\"task_type\": \"b\"}]\n{\"task_type\": \"c\"} /* c */");
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_EQ(mixed[2].task_type, "c");
  EXPECT_THROW(taskpool::records::tasks_from_text("   // only a comment\n"), std::invalid_argument);
  EXPECT_THROW(taskpool::records::tasks_from_text("{\"task_type\": \"a\"} /* unterminated"), std::invalid_argument);
  EXPECT_THROW(taskpool::records::tasks_from_text("{\"task_type\": \"a\"} 5"), std::invalid_argument);
  EXPECT_THROW(taskpool::records::tasks_from_text("[[{\"task_type\": \"a\"}]]"), std::invalid_argument);
}

std::string error_of(const std::string& text) {
  try {
    taskpool::records::tasks_from_text(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(accepted)";
}

// Invariant (#11.7): errors carry the line and column in the whole input.
TEST(Records, ErrorsCarryLineAndColumn) {
  EXPECT_NE(error_of("{\"task_type\": \"a\"}\n{\"task_type\": \"b\",\n \"task_level\": 5,,\n}").find("line 3, column 18"),
            std::string::npos)
      << error_of("{\"task_type\": \"a\"}\n{\"task_type\": \"b\",\n \"task_level\": 5,,\n}");
  EXPECT_NE(error_of("[{\"task_type\": \"a\"},\n  {\"task_type\": \"b\", \"colour\": 1}]").find("line 2, column 3"),
            std::string::npos);
  EXPECT_NE(error_of("{\"task_type\": \"a\"}\n{\"task_type\": \"b\"} x").find("line 2, column 20"), std::string::npos)
      << error_of("{\"task_type\": \"a\"}\n{\"task_type\": \"b\"} x");
  std::string deep(5000, '[');
  EXPECT_NE(error_of("{\"task_type\": \"a\", \"payload\": " + deep).find("line 1"), std::string::npos);
}

// Invariant (#16.5): record times and intervals in numbers are range-checked too.
TEST(Records, NumericTimesAndIntervalsInRange) {
  for (const char* r : {R"({"task_type": "x", "exec_time": 99999999999})", R"({"task_type": "x", "exec_time": -1})",
                        R"({"task_type": "x", "exec_time": 18446744073709551615})",
                        R"({"task_type": "x", "repeat_every": 9999999999999})", R"({"task_type": "x", "repeat_every": "110000d"})",
                        R"({"task_type": "x", "exec_time": "2300-01-01 00:00:00Z"})"})
    EXPECT_THROW(taskpool::records::tasks_from_text(r), std::invalid_argument) << r;
  auto t = taskpool::records::tasks_from_text(R"({"task_type": "x", "exec_time": 7258118399, "repeat_every": 60})");
  EXPECT_EQ(epoch_s(*t[0].exec_time), 7258118399);
  EXPECT_EQ(*t[0].repeat_every, 60s);
}

taskpool::TaskRecord full_record() {
  taskpool::TaskRecord r;
  r.id = 42;
  r.creator_id = "123";
  r.group_id = "456";
  r.task_type = "img_search_cycle";
  r.by_plugin = "search";
  r.exec_task = "exec";
  r.payload = R"({"argv":["true"],"timeout":"5s"})";
  r.create_time = wall_time(1637892794s);
  r.exec_time = wall_time(1637892794123ms);
  r.updated_time = wall_time(1637892795s);
  r.task_level = 7;
  r.report_user_id = "u";
  r.report_group_id = "g";
  r.repeat_every = 90s;
  r.attempts = 2;
  r.max_attempts = 3;
  r.last_error = "boom";
  r.unique_key = "123:456:img_search_cycle";
  r.report_on = taskpool::ReportOn::failure;
  r.planned_time = wall_time(1637892000s);
  r.lease_owner = "host:1:2:3";
  r.lease_until = wall_time(1637892999s);
  r.result = "ok";
  return r;
}

// Invariant: a record printed by show / list --json is accepted back and describes the same
// task (what the table keeps about runs — id, attempts, last_error, result, lease, times of
// creation and update — is read-only and ignored on input), in any time zone.
TEST(Records, RoundTrip) {
  for (const char* zone : {"UTC0", "CET-1CEST,M3.5.0,M10.5.0/3", "<+0530>-5:30"}) {
    ScopedTz tz(zone);
    for (auto exec : {wall_time(1637892794123ms), wall_time(1635642000s) /* 2021-10-31 02:00 CET, the repeated hour */}) {
      auto r = full_record();
      r.exec_time = exec;
      auto t = taskpool::records::task_from_json(taskpool::records::to_json(r));
      EXPECT_EQ(t.creator_id, r.creator_id);
      EXPECT_EQ(t.group_id, r.group_id);
      EXPECT_EQ(t.task_type, r.task_type);
      EXPECT_EQ(t.by_plugin, r.by_plugin);
      EXPECT_EQ(t.exec_task, r.exec_task);
      EXPECT_EQ(nlohmann::json::parse(t.payload), nlohmann::json::parse(r.payload));
      EXPECT_EQ(t.exec_time, r.exec_time) << zone;
      EXPECT_EQ(t.task_level, r.task_level);
      EXPECT_EQ(t.report_user_id, r.report_user_id);
      EXPECT_EQ(t.report_group_id, r.report_group_id);
      EXPECT_EQ(t.repeat_every, r.repeat_every);
      EXPECT_EQ(t.max_attempts, r.max_attempts);
      EXPECT_EQ(t.unique_key, *r.unique_key);
      EXPECT_EQ(t.report_on, r.report_on);
    }
  }
  // A payload that is itself a JSON string keeps its text.
  auto r = full_record();
  r.payload = R"("hello")";
  EXPECT_EQ(taskpool::records::task_from_json(taskpool::records::to_json(r)).payload, R"("hello")");
  // A finished task's record is not re-added as it is: its status cannot be set.
  r.status = taskpool::TaskStatus::done;
  EXPECT_THROW(taskpool::records::task_from_json(taskpool::records::to_json(r)), std::invalid_argument);
}

// Invariant (#11.1): a row that another program stored with bytes that are not UTF-8, or a
// payload that is not JSON, still maps to JSON that prints; the payload then shows as its text.
TEST(Records, StoredGarbageStillPrints) {
  auto r = full_record();
  r.creator_id = "al\xff" "ice";
  r.payload = "{\"a\": \"\xff\"}";
  r.result = "out: \xc3";
  nlohmann::json j;
  ASSERT_NO_THROW(j = taskpool::records::to_json(r));
  ASSERT_TRUE(j["payload"].is_string()) << j["payload"].type_name();
  std::string out;
  EXPECT_NO_THROW(out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  EXPECT_TRUE(nlohmann::json::accept(out)) << out;
  r.payload = "not json at all";
  EXPECT_EQ(taskpool::records::to_json(r)["payload"], "not json at all");
}

}  // namespace
