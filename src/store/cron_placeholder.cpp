// src/store/cron_placeholder.cpp — PLACEHOLDER for taskpool/cron.hpp on branch `sched`, which was
// cut before the `cron` branch merged: delete this file (and its line in CMakeLists.txt) when
// merging; src/timer/cron.cpp is the real implementation. Supports only `*` and plain numbers in
// five fields, zone "" or "UTC".
#include <date/date.h>

#include <sstream>
#include <stdexcept>
#include <vector>

#include "taskpool/cron.hpp"

namespace taskpool {

CronSchedule CronSchedule::parse(std::string_view expr, std::string_view zone) {
  if (!zone.empty() && zone != "UTC") throw std::invalid_argument("cron: tz: unknown time zone '" + std::string(zone) + "'");
  static const char* const kNames[5] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
  static const int kMin[5] = {0, 0, 1, 1, 0}, kMax[5] = {59, 23, 31, 12, 7};
  std::istringstream in{std::string(expr)};
  std::vector<std::string> parts;
  for (std::string p; in >> p;) parts.push_back(p);
  if (parts.size() != 5)
    throw std::invalid_argument("cron: expected 5 fields, got " + std::to_string(parts.size()) + " in '" + std::string(expr) + "'");
  CronSchedule c;
  c.expr_ = expr;
  c.zone_ = zone;
  c.seconds_.set(0);
  for (int i = 0; i < 5; ++i) {
    const std::string& p = parts[static_cast<std::size_t>(i)];
    int lo = kMin[i], hi = kMax[i];
    if (p != "*") {
      if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) < lo ||
          std::stoi(p) > hi)
        throw std::invalid_argument(std::string("cron: ") + kNames[i] + " field: '" + p + "' is not valid in '" +
                                    std::string(expr) + "'");
      lo = hi = std::stoi(p);
    }
    for (int v = lo; v <= hi; ++v) {
      auto u = static_cast<std::size_t>(v);
      if (i == 0) c.minutes_.set(u);
      if (i == 1) c.hours_.set(u);
      if (i == 2) c.days_.set(u);
      if (i == 3) c.months_.set(u);
      if (i == 4) c.weekdays_.set(u % 7);
    }
  }
  c.days_star_ = parts[2] == "*";
  c.weekdays_star_ = parts[4] == "*";
  return c;
}

bool CronSchedule::day_matches(unsigned day, unsigned weekday) const {
  if (!days_star_ && !weekdays_star_) return days_.test(day) || weekdays_.test(weekday);
  return days_.test(day) && weekdays_.test(weekday);
}

std::optional<CronSchedule::time_point> CronSchedule::next(time_point after) const {
  using namespace std::chrono;
  // Minute by minute over at most ~5 years (a day that never comes, e.g. 31 February, ends it).
  auto t = floor<minutes>(after) + minutes(1);
  for (long i = 0; i < 60L * 24 * 366 * 5 && t < kCronEnd; ++i, t += minutes(1)) {
    auto day = floor<date::days>(t);
    date::year_month_day ymd(day);
    date::hh_mm_ss<minutes> hms(t - day);
    if (minutes_.test(static_cast<std::size_t>(hms.minutes().count())) &&
        hours_.test(static_cast<std::size_t>(hms.hours().count())) && months_.test(unsigned(ymd.month())) &&
        day_matches(unsigned(ymd.day()), date::weekday(day).c_encoding()))
      return time_point_cast<system_clock::duration>(t);
  }
  return std::nullopt;
}

std::chrono::seconds CronSchedule::utc_offset(time_point) const { return std::chrono::seconds(0); }

std::string CronSchedule::format(time_point t) const {
  return date::format("%Y-%m-%dT%H:%M:%S+00:00", std::chrono::floor<std::chrono::seconds>(t));
}

}  // namespace taskpool
