// src/timer/cron.cpp — cron expressions and their next instant. See taskpool/cron.hpp.
//
// Design note. Parsing turns each field into a bit set (seconds, minutes, hours, days of the
// month, months, days of the week) and remembers whether the day fields start with '*' (the
// Vixie rule). next() walks the zone's offset intervals (date::sys_info: a span of instants with
// one UTC offset) from `after` on. Within an interval local time is instant + offset, so the
// first match there is a field-wise search of local civil time (skip to the next month, day,
// hour or minute whose field matches; never second by second), shifted back by the offset. At
// the start of an interval:
//   - after a gap (the offset grew): the skipped local times [begin + old, begin + new) are
//     searched; any match there makes `begin` itself, the first instant after the gap, the answer;
//   - after a fold (the offset shrank): local times below begin + old already occurred in the
//     previous interval, so the search in this one starts at begin + old (first occurrence only).
// Bounded work: a zone has at most a few intervals a year, a search skips whole months whose
// month does not match and whole days whose day does not match, so an impossible expression
// ("0 0 30 2 *") costs about 30 steps a year up to kCronEnd. UTC has no intervals: one search.
#include "taskpool/cron.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "timer/shown_text.hpp"

namespace taskpool {
namespace {

using detail::shown;

constexpr long long kDay = 86'400;
constexpr long long kEndSeconds = 7'258'118'400;  // kCronEnd

const char* const kMonthNames[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
const char* const kDayNames[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

struct FieldSpec {
  const char* name;
  int lo, hi;
  const char* const* names;  // names[i] is value names_base + i
  int names_count, names_base;
};
constexpr FieldSpec kSecond{"second", 0, 59, nullptr, 0, 0};
constexpr FieldSpec kMinute{"minute", 0, 59, nullptr, 0, 0};
constexpr FieldSpec kHour{"hour", 0, 23, nullptr, 0, 0};
constexpr FieldSpec kDom{"day-of-month", 1, 31, nullptr, 0, 0};
constexpr FieldSpec kMonth{"month", 1, 12, kMonthNames, 12, 1};
constexpr FieldSpec kDow{"day-of-week", 0, 7, kDayNames, 7, 0};

bool is_space(char c) { return c == ' ' || c == '\t'; }

class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text, std::string_view expr)
      : spec_(spec), text_(text), expr_(expr) {}

  [[noreturn]] void bad(std::string_view item, const std::string& why) const {
    throw std::invalid_argument("cron: " + std::string(spec_.name) + " field: '" + shown(item) + "' " + why + " in '" +
                                shown(expr_) + "'");
  }

  // Bit v set for each value v in the field (day-of-week 7 folded into 0).
  std::uint64_t parse() const {
    std::uint64_t bits = 0;
    std::size_t i = 0;
    while (true) {
      std::size_t j = text_.find(',', i);
      std::string_view item = text_.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i);
      bits |= parse_item(item);
      if (j == std::string_view::npos) break;
      i = j + 1;
    }
    if (spec_.hi == 7 && (bits >> 7 & 1)) bits = (bits & ~(std::uint64_t{1} << 7)) | 1;
    return bits;
  }

 private:
  std::uint64_t parse_item(std::string_view item) const {
    if (item.empty()) bad(text_, "has an empty list item");
    std::string_view base = item, step_text;
    bool stepped = false;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
      base = item.substr(0, slash);
      step_text = item.substr(slash + 1);
      stepped = true;
    }
    int a, b;
    if (base == "*") {
      a = spec_.lo;
      b = spec_.hi == 7 ? 6 : spec_.hi;  // '*' in day-of-week is 0-6
    } else if (auto dash = base.find('-'); dash != std::string_view::npos) {
      a = value(base.substr(0, dash), item);
      b = value(base.substr(dash + 1), item);
      if (a > b) bad(item, "is a backwards range");
    } else {
      if (stepped) bad(item, "has a step without '*' or a range (use a-b/n)");
      a = b = value(base, item);
    }
    int step = 1;
    if (stepped) {
      step = number(step_text, item, "step");
      if (step < 1 || step > spec_.hi - spec_.lo + 1)
        bad(item, "has step " + std::string(step_text) + " outside 1-" + std::to_string(spec_.hi - spec_.lo + 1));
    }
    std::uint64_t bits = 0;
    for (int v = a; v <= b; v += step) bits |= std::uint64_t{1} << v;
    return bits;
  }

  int number(std::string_view t, std::string_view item, const char* what) const {
    if (t.empty()) bad(item, std::string("lacks a ") + what);
    if (t.size() > 4) bad(item, std::string("has a ") + what + " out of range");
    int v = 0;
    for (char c : t) {
      if (c < '0' || c > '9') bad(item, std::string("has a ") + what + " that is not a number");
      v = v * 10 + (c - '0');
    }
    return v;
  }

  int value(std::string_view t, std::string_view item) const {
    if (!t.empty() && (t[0] < '0' || t[0] > '9') && spec_.names) {
      for (int k = 0; k < spec_.names_count; ++k) {
        std::string_view name = spec_.names[k];
        if (t.size() == name.size() && std::equal(t.begin(), t.end(), name.begin(), [](char x, char y) {
              return (x >= 'a' && x <= 'z' ? static_cast<char>(x - 'a' + 'A') : x) == y;
            }))
          return spec_.names_base + k;
      }
      bad(item, "has an unknown name");
    }
    int v = number(t, item, "value");
    if (v < spec_.lo || v > spec_.hi)
      bad(item, "is out of range " + std::to_string(spec_.lo) + "-" + std::to_string(spec_.hi));
    return v;
  }

  const FieldSpec& spec_;
  std::string_view text_, expr_;
};

// The next set bit at or after `from`, or -1.
template <std::size_t N>
int next_bit(const std::bitset<N>& b, int from) {
  for (int i = from; i < static_cast<int>(N); ++i)
    if (b[static_cast<std::size_t>(i)]) return i;
  return -1;
}

template <std::size_t N>
std::bitset<N> to_bits(std::uint64_t v) {
  return std::bitset<N>(static_cast<unsigned long long>(v));
}

}  // namespace

CronSchedule CronSchedule::parse(std::string_view expr, std::string_view zone) {
  CronSchedule s;
  s.expr_ = std::string(expr);
  s.zone_ = std::string(zone);
  std::vector<std::string_view> fields;
  for (std::size_t i = 0; i < expr.size();) {
    while (i < expr.size() && is_space(expr[i])) ++i;
    std::size_t j = i;
    while (j < expr.size() && !is_space(expr[j])) ++j;
    if (j > i) fields.push_back(expr.substr(i, j - i));
    i = j;
  }
  if (fields.size() == 1 && fields[0].starts_with('@')) {
    std::string m;
    for (char c : fields[0]) m += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    const char* body = nullptr;
    if (m == "@yearly" || m == "@annually") body = "0 0 1 1 *";
    else if (m == "@monthly") body = "0 0 1 * *";
    else if (m == "@weekly") body = "0 0 * * 0";
    else if (m == "@daily" || m == "@midnight") body = "0 0 * * *";
    else if (m == "@hourly") body = "0 * * * *";
    else throw std::invalid_argument("cron: macro: unknown macro '" + shown(fields[0]) + "' (@yearly @annually @monthly @weekly @daily @midnight @hourly)");
    CronSchedule inner = parse(body, zone);
    inner.expr_ = s.expr_;
    return inner;
  }
  if (fields.size() != 5 && fields.size() != 6)
    throw std::invalid_argument("cron: expression: expected 5 or 6 fields or a @macro, got " +
                                std::to_string(fields.size()) + " in '" + shown(expr) + "'");
  std::size_t k = 0;
  s.seconds_ = fields.size() == 6 ? to_bits<60>(FieldParser(kSecond, fields[k++], expr).parse()) : std::bitset<60>(1);
  s.minutes_ = to_bits<60>(FieldParser(kMinute, fields[k++], expr).parse());
  s.hours_ = to_bits<24>(FieldParser(kHour, fields[k++], expr).parse());
  s.days_star_ = fields[k].starts_with('*');
  s.days_ = to_bits<32>(FieldParser(kDom, fields[k++], expr).parse());
  s.months_ = to_bits<13>(FieldParser(kMonth, fields[k++], expr).parse());
  s.weekdays_star_ = fields[k].starts_with('*');
  s.weekdays_ = to_bits<7>(FieldParser(kDow, fields[k++], expr).parse());
  if (!zone.empty()) {
    try {
      s.tz_ = date::locate_zone(zone);
    } catch (const std::exception&) {
      throw std::invalid_argument("cron: tz: unknown time zone '" + shown(zone) + "'");
    }
  }
  return s;
}

bool CronSchedule::day_matches(unsigned day, unsigned weekday) const {
  const bool d = days_[day], w = weekdays_[weekday];
  if (!days_star_ && !weekdays_star_) return d || w;
  return d && w;
}

std::optional<long long> CronSchedule::first_local_match(long long lo, long long hi) const {
  long long t = lo;
  while (t < hi) {
    const long long days = t >= 0 ? t / kDay : (t - kDay + 1) / kDay;
    const long long day_start = days * kDay;
    const int sod = static_cast<int>(t - day_start);
    const date::sys_days sd{date::days(days)};
    const date::year_month_day ymd(sd);
    const unsigned month = static_cast<unsigned>(ymd.month());
    if (!months_[month]) {  // the first day of the next month
      const date::year_month_day first = ymd.year() / ymd.month() / 1;
      t = date::sys_days(first + date::months(1)).time_since_epoch().count() * kDay;
      continue;
    }
    if (!day_matches(static_cast<unsigned>(ymd.day()), date::weekday(sd).c_encoding())) {
      t = day_start + kDay;
      continue;
    }
    const int h = sod / 3600, m = sod / 60 % 60, s = sod % 60;
    const int h2 = next_bit(hours_, h);
    if (h2 < 0) {
      t = day_start + kDay;
      continue;
    }
    if (h2 != h) {
      t = day_start + h2 * 3600;
      continue;
    }
    const int m2 = next_bit(minutes_, m);
    if (m2 < 0) {
      t = day_start + (h + 1) * 3600;
      continue;
    }
    if (m2 != m) {
      t = day_start + h * 3600 + m2 * 60;
      continue;
    }
    const int s2 = next_bit(seconds_, s);
    if (s2 < 0) {
      t = day_start + h * 3600 + (m + 1) * 60;
      continue;
    }
    t = day_start + h * 3600 + m * 60 + s2;
    if (t < hi) return t;
    break;
  }
  return std::nullopt;
}

std::optional<CronSchedule::time_point> CronSchedule::next(time_point after) const {
  using std::chrono::seconds;
  long long start = 0;  // instants before 1970 are not searched
  if (after >= time_point{}) start = std::chrono::floor<seconds>(after).time_since_epoch().count() + 1;
  if (start >= kEndSeconds) return std::nullopt;
  auto at = [](long long s) { return time_point(seconds(s)); };
  if (!tz_) {
    auto m = first_local_match(start, kEndSeconds);
    return m ? std::optional<time_point>(at(*m)) : std::nullopt;
  }
  while (start < kEndSeconds) {
    const date::sys_info info = tz_->get_info(date::sys_seconds(seconds(start)));
    const long long begin = info.begin.time_since_epoch().count();
    const long long end = std::min<long long>(info.end.time_since_epoch().count(), kEndSeconds);
    const long long off = info.offset.count();
    long long lo = start + off;
    if (begin > 0) {
      const long long prev = tz_->get_info(date::sys_seconds(seconds(begin - 1))).offset.count();
      if (prev > off) {
        lo = std::max(lo, begin + prev);  // a fold: these local times occurred before `begin`
      } else if (prev < off && start == begin && first_local_match(begin + prev, begin + off)) {
        return at(begin);  // matches in the gap occur at the first instant after it
      }
    }
    if (auto m = first_local_match(lo, end + off)) return at(*m - off);
    start = end;
  }
  return std::nullopt;
}

std::chrono::seconds CronSchedule::utc_offset(time_point t) const {
  if (!tz_) return std::chrono::seconds(0);
  return tz_->get_info(std::chrono::floor<std::chrono::seconds>(t)).offset;
}

std::string CronSchedule::format(time_point t) const {
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const long long off = utc_offset(t).count();
  const long long local = secs.time_since_epoch().count() + off;
  const long long days = local >= 0 ? local / kDay : (local - kDay + 1) / kDay;
  const long long sod = local - days * kDay;
  const date::year_month_day ymd{date::sys_days(date::days(days))};
  const long long a = off < 0 ? -off : off;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02lld:%02lld:%02lld%c%02lld:%02lld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), sod / 3600, sod / 60 % 60,
                sod % 60, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
  return buf;
}

}  // namespace taskpool
