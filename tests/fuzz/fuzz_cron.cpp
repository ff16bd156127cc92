// tests/fuzz/fuzz_cron.cpp — libFuzzer target for CronSchedule::parse and next() (`--cron`,
// `--tz`, `cron-next`, schedule_cron). Input: the expression, optionally a newline and a zone.
// Checks: no crash or sanitizer report; parse throws nothing but std::invalid_argument; for an
// accepted schedule, next() instants are strictly increasing whole seconds before kCronEnd, and
// consistent (next(r - 1s) == r and next of a time between two instants is the later one).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

#include "taskpool/cron.hpp"

namespace {
[[noreturn]] void wrong(const char* what, const std::string& input) {
  std::fprintf(stderr, "fuzz_cron: %s: '%s'\n", what, input.c_str());
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace std::chrono;
  const std::string input(reinterpret_cast<const char*>(data), size);
  std::string expr = input, zone;
  if (auto nl = input.find('\n'); nl != std::string::npos) {
    expr = input.substr(0, nl);
    zone = input.substr(nl + 1);
  }
  std::optional<taskpool::CronSchedule> s;
  try {
    s = taskpool::CronSchedule::parse(expr, zone);
  } catch (const std::invalid_argument& e) {
    if (std::string(e.what()).find('\n') != std::string::npos) wrong("a message of more than one line", input);
    return 0;
  }
  // Starting points spread over the range, chosen by the input's length.
  const system_clock::time_point starts[] = {
      system_clock::time_point{} + seconds(1'767'225'600 + 86'399 * static_cast<long long>(size % 400)),
      system_clock::time_point{} + seconds(515'000'000 + 2'591'999 * static_cast<long long>(size % 97)),
      taskpool::kCronEnd - hours(24 * 400)};
  for (auto t : starts) {
    auto prev = t;
    for (int i = 0; i < 20; ++i) {
      auto r = s->next(prev);
      if (!r) break;
      if (*r <= prev) wrong("next() is not strictly after", input);
      if (*r >= taskpool::kCronEnd) wrong("next() at or after kCronEnd", input);
      if (floor<seconds>(*r) != *r) wrong("next() is not a whole second", input);
      if (s->next(*r - seconds(1)) != r) wrong("next(r - 1s) != r", input);
      if (*r - prev > seconds(2) && s->next(prev + (*r - prev) / 2) != r) wrong("an instant between two", input);
      (void)s->format(*r);
      prev = *r;
    }
  }
  return 0;
}
