// src/store/cron_placeholder.cpp — PLACEHOLDER for taskpool/cron.hpp (branch `sched`); deleted
// when the `cron` branch's parser merges. `*` and plain numbers in five fields, UTC only.
#include <date/date.h>

#include <sstream>
#include <stdexcept>
#include <vector>

#include "taskpool/cron.hpp"

namespace taskpool {

CronSchedule CronSchedule::parse(std::string_view expr, std::string_view zone) {
  if (!zone.empty() && zone != "UTC") throw std::invalid_argument("tz: unknown time zone '" + std::string(zone) + "'");
  static const char* const kNames[5] = {"minute", "hour", "day-of-month", "month", "day-of-week"};
  static const int kMin[5] = {0, 0, 1, 1, 0}, kMax[5] = {59, 23, 31, 12, 7};
  std::istringstream in{std::string(expr)};
  std::vector<std::string> parts;
  for (std::string p; in >> p;) parts.push_back(p);
  if (parts.size() != 5)
    throw std::invalid_argument("cron: expected 5 fields, got " + std::to_string(parts.size()) + " in '" + std::string(expr) + "'");
  CronSchedule c;
  for (int i = 0; i < 5; ++i) {
    const std::string& p = parts[static_cast<std::size_t>(i)];
    if (p == "*") continue;
    if (p.empty() || p.size() > 2 || p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) < kMin[i] ||
        std::stoi(p) > kMax[i])
      throw std::invalid_argument(std::string("cron: ") + kNames[i] + " field '" + p + "' is not valid");
    c.field_[i] = std::stoi(p) % (i == 4 ? 7 : 100);
  }
  return c;
}

std::optional<std::chrono::system_clock::time_point> CronSchedule::next(std::chrono::system_clock::time_point after) const {
  using namespace std::chrono;
  auto t = floor<minutes>(after) + minutes(1);
  // Minute by minute over at most ~5 years (a day that never comes, e.g. 31 February, ends it).
  for (long i = 0; i < 60L * 24 * 366 * 5; ++i, t += minutes(1)) {
    auto day = floor<date::days>(t);
    date::year_month_day ymd(day);
    date::hh_mm_ss<minutes> hms(t - day);
    const int v[5] = {static_cast<int>(hms.minutes().count()), static_cast<int>(hms.hours().count()),
                      static_cast<int>(unsigned(ymd.day())), static_cast<int>(unsigned(ymd.month())),
                      static_cast<int>(date::weekday(day).c_encoding())};
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) ok = field_[k] < 0 || field_[k] == v[k];
    if (!ok && field_[0] >= 0 && v[0] != field_[0]) continue;
    if (ok) return time_point_cast<system_clock::duration>(t);
  }
  return std::nullopt;
}

}  // namespace taskpool
