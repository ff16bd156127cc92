// src/store/time_text.cpp — see taskpool/time_text.hpp.
#include "taskpool/time_text.hpp"

#include <cstdint>
#include <ctime>
#include <stdexcept>

namespace taskpool {
namespace {

[[noreturn]] void bad(const std::string& msg) { throw std::invalid_argument(msg); }

int digits(const std::string& s, std::size_t& i, int n, const char* what) {
  int v = 0;
  for (int k = 0; k < n; ++k, ++i) {
    if (i >= s.size() || s[i] < '0' || s[i] > '9') bad(std::string("bad time '") + s + "': expected " + what);
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

}  // namespace

void check_time(wall_time t, std::string_view field) {
  if (t < kMinTime || t >= kMaxTime)
    throw std::invalid_argument(std::string(field) + " is outside the supported range 1970-01-01 .. 2199-12-31 (UTC)");
}

void check_duration(std::chrono::milliseconds d, std::string_view field) {
  if (d.count() < 0 || d > kMaxDuration)
    throw std::invalid_argument(std::string(field) + " is outside the supported range 0 .. 18250d (50 years)");
}

std::chrono::milliseconds parse_duration(std::string_view text) {
  auto bad = [&] {
    return std::invalid_argument("bad duration '" + std::string(text) + "': use e.g. 250ms, 30s, 5m, 2h, 1d");
  };
  if (text.empty()) throw bad();
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    std::int64_t n = 0;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
      n = n * 10 + (text[j] - '0');
      if (n > 1'000'000'000) throw bad();
      ++j;
    }
    if (j == i) throw bad();
    std::size_t k = j;
    while (k < text.size() && ((text[k] >= 'a' && text[k] <= 'z'))) ++k;
    std::string_view unit = text.substr(j, k - j);
    std::int64_t ms;
    if (unit == "ms") ms = 1;
    else if (unit == "s" || (unit.empty() && k == text.size() && i == 0)) ms = 1000;  // a bare number is seconds
    else if (unit == "m" || unit == "min") ms = 60'000;
    else if (unit == "h") ms = 3'600'000;
    else if (unit == "d") ms = 86'400'000;
    else throw bad();
    total += n * ms;
    i = k;
  }
  return std::chrono::milliseconds(total);
}

wall_time parse_time(std::string_view text_view) {
  const std::string text(text_view);
  if (text.empty()) bad("bad time '': empty");
  if (text.find_first_not_of("0123456789") == std::string::npos) {
    if (text.size() > 12) bad("bad time '" + text + "': epoch seconds out of range");
    return wall_time(std::chrono::seconds(std::stoll(text)));
  }
  std::size_t i = 0;
  std::tm tm{};
  tm.tm_year = digits(text, i, 4, "YYYY-MM-DD HH:MM:SS") - 1900;
  if (i >= text.size() || text[i++] != '-') bad("bad time '" + text + "': expected YYYY-MM-DD HH:MM:SS");
  tm.tm_mon = digits(text, i, 2, "a month") - 1;
  if (i >= text.size() || text[i++] != '-') bad("bad time '" + text + "': expected YYYY-MM-DD HH:MM:SS");
  tm.tm_mday = digits(text, i, 2, "a day");
  if (i >= text.size() || (text[i] != ' ' && text[i] != 'T')) bad("bad time '" + text + "': expected a time after the date");
  ++i;
  tm.tm_hour = digits(text, i, 2, "an hour");
  if (i >= text.size() || text[i++] != ':') bad("bad time '" + text + "': expected HH:MM:SS");
  tm.tm_min = digits(text, i, 2, "minutes");
  if (i >= text.size() || text[i++] != ':') bad("bad time '" + text + "': expected HH:MM:SS");
  tm.tm_sec = digits(text, i, 2, "seconds");
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    bad("bad time '" + text + "': a field is out of range");
  long long ms = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    int scale = 100;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      ms += (text[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
  }
  std::time_t secs;
  if (i == text.size()) {
    tm.tm_isdst = -1;  // local time, DST as the zone says
    secs = std::mktime(&tm);
  } else if (text[i] == 'Z' && i + 1 == text.size()) {
    secs = timegm(&tm);
  } else if ((text[i] == '+' || text[i] == '-') && (text.size() - i == 6 || text.size() - i == 5)) {
    int sign = text[i] == '-' ? -1 : 1;
    ++i;
    int oh = digits(text, i, 2, "an offset hour");
    if (i < text.size() && text[i] == ':') ++i;
    int om = digits(text, i, 2, "offset minutes");
    secs = timegm(&tm) - sign * (oh * 3600 + om * 60);
  } else {
    bad("bad time '" + text + "': unexpected text after the time");
  }
  return wall_time(std::chrono::seconds(secs)) + std::chrono::milliseconds(ms);
}

std::string format_time(wall_time t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

}  // namespace taskpool
