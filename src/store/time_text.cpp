// src/store/time_text.cpp — see taskpool/time_text.hpp.
#include "taskpool/time_text.hpp"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "timer/shown_text.hpp"

namespace taskpool {
namespace {

using detail::shown;

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::int64_t kMaxSeconds = duration_cast<seconds>(kMaxTime.time_since_epoch()).count();
constexpr std::int64_t kMinSeconds = duration_cast<seconds>(kMinTime.time_since_epoch()).count();

std::string prefix(std::string_view field) { return field.empty() ? std::string() : std::string(field) + ": "; }

class TimeParser {
 public:
  TimeParser(std::string_view text, std::string_view field) : text_(text), field_(field) {}

  [[noreturn]] void bad(const std::string& why) const {
    throw std::invalid_argument(prefix(field_) + "bad time '" + shown(text_) + "': " + why);
  }
  bool more() const { return i_ < text_.size(); }
  char peek() const { return more() ? text_[i_] : '\0'; }
  bool digit() const { return peek() >= '0' && peek() <= '9'; }
  int digits(int n, const char* what) {
    int v = 0;
    for (int k = 0; k < n; ++k, ++i_) {
      if (!digit()) bad(std::string("expected ") + what + " (YYYY-MM-DD HH:MM:SS)");
      v = v * 10 + (text_[i_] - '0');
    }
    return v;
  }
  void expect(char c, const char* what) {
    if (peek() != c) bad(std::string("expected ") + what + " (YYYY-MM-DD HH:MM:SS)");
    ++i_;
  }

  wall_time parse() {
    if (text_.empty()) bad("empty");
    if (text_.find_first_not_of("0123456789") == std::string_view::npos) return epoch_seconds();
    int year = digits(4, "a year");
    expect('-', "'-'");
    int month = digits(2, "a month");
    expect('-', "'-'");
    int day = digits(2, "a day");
    if (peek() != ' ' && peek() != 'T') bad("expected a time after the date (YYYY-MM-DD HH:MM:SS)");
    ++i_;
    int hour = digits(2, "an hour");
    expect(':', "':'");
    int minute = digits(2, "minutes");
    expect(':', "':'");
    int second = digits(2, "seconds");
    if (month < 1 || month > 12) bad("month " + std::to_string(month) + " does not exist");
    if (day < 1 || day > days_in_month(year, month))
      bad("day " + std::to_string(day) + " does not exist in " + std::to_string(year) + "-" + two(month));
    if (hour > 23) bad("hour " + std::to_string(hour) + " does not exist (00..23)");
    if (minute > 59) bad("minute " + std::to_string(minute) + " does not exist (00..59)");
    if (second > 59) bad("second " + std::to_string(second) + " does not exist (00..59; leap seconds are not kept)");
    int ms = fraction();
    // Civil seconds as if the time were UTC; exact for Z and offsets, within a day for local time.
    std::int64_t civil = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
    std::int64_t secs;
    if (!more()) {
      // Local offsets are within a day: far-off years are refused before the C library sees them.
      if (civil < kMinSeconds - 86400 || civil >= kMaxSeconds + 86400) out_of_range();
      secs = local_to_utc(year, month, day, hour, minute, second);
    } else if (peek() == 'Z' && i_ + 1 == text_.size()) {
      secs = civil;
    } else if (peek() == '+' || peek() == '-') {
      int sign = peek() == '-' ? -1 : 1;
      ++i_;
      int oh = digits(2, "an offset hour (+HH:MM)");
      if (peek() == ':') ++i_;
      int om = digits(2, "offset minutes (+HH:MM)");
      if (more()) bad("unexpected text after the offset");
      if (om > 59 || oh * 60 + om > 14 * 60) bad("offset beyond +-14:00");
      secs = civil - sign * (oh * 3600 + om * 60);
    } else {
      bad("unexpected text after the time (use Z or +HH:MM for an offset)");
    }
    if (secs < kMinSeconds || secs >= kMaxSeconds) out_of_range();
    return wall_time(seconds(secs)) + milliseconds(ms);
  }

 private:
  [[noreturn]] void out_of_range() const { bad("outside the supported range 1970-01-01 .. 2199-12-31 (UTC)"); }

  wall_time epoch_seconds() {
    // At most 12 digits, so stoll cannot overflow; the range check does the rest.
    if (text_.size() > 12) out_of_range();
    std::int64_t s = std::stoll(std::string(text_));
    if (s < kMinSeconds || s >= kMaxSeconds) out_of_range();
    return wall_time(seconds(s));
  }

  // Milliseconds of an optional ".f" (1 to 9 digits; finer ones are cut).
  int fraction() {
    if (peek() != '.') return 0;
    ++i_;
    int ms = 0, n = 0;
    for (; digit(); ++i_, ++n) {
      if (n < 3) ms = ms * 10 + (text_[i_] - '0');
    }
    if (n == 0 || n > 9) bad("expected 1 to 9 digits of a fraction of a second");
    for (int k = n; k < 3; ++k) ms *= 10;
    return ms;
  }

  static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
  static int days_in_month(int y, int m) {
    static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : kDays[m - 1];
  }
  static std::string two(int v) { return (v < 10 ? "0" : "") + std::to_string(v); }
  // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's civil algorithm).
  static std::int64_t days_from_civil(std::int64_t y, int m, int d) {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t yoe = y - era * 400;
    const std::int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
  }

  // The instant a local wall-clock time names. mktime would move a time skipped by a
  // daylight-saving change to another hour, so each reading (standard, DST) is kept only if it
  // converts back to the same wall-clock fields; none left: the time does not exist.
  std::int64_t local_to_utc(int year, int month, int day, int hour, int minute, int second) const {
    std::optional<std::int64_t> best;
    for (int dst : {0, 1}) {
      std::tm tm{};
      tm.tm_year = year - 1900;
      tm.tm_mon = month - 1;
      tm.tm_mday = day;
      tm.tm_hour = hour;
      tm.tm_min = minute;
      tm.tm_sec = second;
      tm.tm_isdst = dst;
      std::time_t t = std::mktime(&tm);
      std::tm back{};
      if (!localtime_r(&t, &back)) continue;
      if (back.tm_year != year - 1900 || back.tm_mon != month - 1 || back.tm_mday != day || back.tm_hour != hour ||
          back.tm_min != minute || back.tm_sec != second)
        continue;
      if (!best || t < *best) best = t;  // a repeated hour: the earlier instant
    }
    if (!best) bad("this local time does not exist (skipped by a daylight-saving change); give an offset");
    return *best;
  }

  std::string_view text_;
  std::string_view field_;
  std::size_t i_ = 0;
};

}  // namespace

void check_time(wall_time t, std::string_view field) {
  if (t < kMinTime || t >= kMaxTime)
    throw std::invalid_argument(std::string(field) + " is outside the supported range 1970-01-01 .. 2199-12-31 (UTC)");
}

void check_duration(std::chrono::milliseconds d, std::string_view field) {
  if (d.count() < 0 || d > kMaxDuration)
    throw std::invalid_argument(std::string(field) + " is outside the supported range 0 .. 18250d (50 years)");
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view field) {
  auto bad = [&](const char* why) {
    return std::invalid_argument(prefix(field) + "bad duration '" + shown(text) + "': " + why);
  };
  constexpr const char* kForms = "use e.g. 250ms, 30s, 5m, 2h, 1d, 1h30m";
  if (text.empty()) throw bad(kForms);
  std::int64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t j = i;
    std::int64_t n = 0;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
      n = n * 10 + (text[j] - '0');
      if (n > kMaxDuration.count()) throw bad("longer than the supported 18250d (50 years)");
      ++j;
    }
    if (j == i) throw bad(kForms);
    std::size_t k = j;
    while (k < text.size() && text[k] >= 'a' && text[k] <= 'z') ++k;
    std::string_view unit = text.substr(j, k - j);
    std::int64_t ms;
    if (unit == "ms") ms = 1;
    else if (unit == "s" || (unit.empty() && k == text.size() && i == 0)) ms = 1000;  // a bare number is seconds
    else if (unit == "m" || unit == "min") ms = 60'000;
    else if (unit == "h") ms = 3'600'000;
    else if (unit == "d") ms = 86'400'000;
    else throw bad(kForms);
    // Checked before multiplying, so neither the product nor the sum can overflow.
    if (n > (kMaxDuration.count() - total) / ms) throw bad("longer than the supported 18250d (50 years)");
    total += n * ms;
    i = k;
  }
  return std::chrono::milliseconds(total);
}

wall_time parse_time(std::string_view text, std::string_view field) { return TimeParser(text, field).parse(); }

std::string format_time(wall_time t) {
  std::time_t s = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string format_time_precise(wall_time t) {
  auto ms = std::chrono::floor<milliseconds>(t.time_since_epoch());
  auto secs = std::chrono::floor<seconds>(ms);
  std::time_t s = secs.count();
  std::tm tm{};
  localtime_r(&s, &tm);
  if (tm.tm_gmtoff % 60 != 0) {  // an offset in seconds (old local mean times): say it in UTC
    gmtime_r(&s, &tm);
    tm.tm_gmtoff = 0;
  }
  char buf[64];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  if (auto frac = (ms - secs).count(); frac != 0)
    n += static_cast<std::size_t>(std::snprintf(buf + n, sizeof buf - n, ".%03d", static_cast<int>(frac)));
  long off = tm.tm_gmtoff / 60;
  std::snprintf(buf + n, sizeof buf - n, "%c%02ld:%02ld", off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60,
                (off < 0 ? -off : off) % 60);
  return buf;
}

std::string format_time_utc(wall_time t) {
  auto ms = std::chrono::floor<milliseconds>(t.time_since_epoch());
  auto secs = std::chrono::floor<seconds>(ms);
  std::time_t s = secs.count();
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((ms - secs).count()));
  return buf;
}

}  // namespace taskpool
