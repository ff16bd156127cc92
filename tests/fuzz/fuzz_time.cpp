// tests/fuzz/fuzz_time.cpp — libFuzzer target for parse_time and parse_duration (`--at`, `--in`,
// `--every`, record times, exec timeouts). Checks: no crash or sanitizer report; an accepted time
// lies in [kMinTime, kMaxTime) and an accepted duration in [0, kMaxDuration] (nothing wraps); an
// accepted time printed by format_time parses back to the same second (run with TZ=UTC).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "taskpool/time_text.hpp"

namespace {
[[noreturn]] void wrong(const char* what, const std::string& input) {
  std::fprintf(stderr, "fuzz_time: %s: '%s'\n", what, input.c_str());
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    taskpool::wall_time t = taskpool::parse_time(text);
    if (t < taskpool::kMinTime || t >= taskpool::kMaxTime) wrong("accepted a time outside the range", text);
    taskpool::wall_time back = taskpool::parse_time(taskpool::format_time(t));
    if (floor<seconds>(back) != floor<seconds>(t)) wrong("format_time does not parse back", text);
  } catch (const std::invalid_argument&) {
  }
  try {
    milliseconds d = taskpool::parse_duration(text);
    if (d.count() < 0 || d > taskpool::kMaxDuration) wrong("accepted a duration outside the range", text);
    if (taskpool::parse_duration(std::to_string(d.count()) + "ms") != d) wrong("a duration does not round-trip", text);
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
