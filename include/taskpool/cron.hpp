// taskpool/cron.hpp — cron expressions with IANA time zones: parse once, ask for the next instant.
//
//   auto s = taskpool::CronSchedule::parse("0 9 * * MON-FRI", "Europe/London");  // weekdays 09:00
//   std::optional<std::chrono::system_clock::time_point> t = s.next(std::chrono::system_clock::now());
//
// Expressions: five fields (minute hour day-of-month month day-of-week) or six with a leading
// seconds field; each field is `*`, a number, a range `a-b`, a list `a,b,...`, a step `*/n` or
// `a-b/n`; months JAN-DEC and days SUN-SAT by name in any case; day-of-week 0-7 (0 and 7 are
// Sunday); the macros @yearly @annually @monthly @weekly @daily @midnight @hourly. Day-of-month
// and day-of-week combine as in Vixie cron: when both fields are restricted (neither starts with
// `*`) a day matches if either matches, otherwise both must.
//
// Time zones: "" is UTC; any other name is looked up in the system tz database (IANA names such
// as "America/New_York"). The schedule is the set of instants at which a matching local wall time
// occurs, with daylight-saving changes taken exactly:
//   - a matching wall time inside a spring-forward gap occurs once, at the first instant after the
//     gap (every match inside one gap collapses into that instant, and into a match at it);
//   - a matching wall time that occurs twice in a fall-back fold occurs only at its first
//     (earlier) instant.
// Instants are whole seconds before kCronEnd (2200-01-01T00:00:00Z, the task table's range).
//
// Errors: parse throws std::invalid_argument with a one-line message naming the field (or "tz")
// and the offending text, e.g. `cron: hour field: 24 is out of range 0-23 in '0 24 * * *'`.
// Thread-safety: a CronSchedule is immutable after parse; every const member may be called from
// any thread at once. Blocking: parse of a zone other than UTC reads the tz database from disk
// the first time the process needs it (once); next() and format() compute only (the first
// look-up in a zone loads that zone's transitions, once).
#pragma once

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace date {
class time_zone;  // Howard Hinnant's date/tz; its headers stay out of the public API
}  // namespace date

namespace taskpool {

// Schedules end here: next() finds nothing at or after it (2200-01-01T00:00:00Z).
inline constexpr std::chrono::system_clock::time_point kCronEnd{std::chrono::seconds(7'258'118'400)};

class CronSchedule {
 public:
  using time_point = std::chrono::system_clock::time_point;

  // Parses `expr` for the zone `zone` ("" = UTC). Throws std::invalid_argument (see above).
  static CronSchedule parse(std::string_view expr, std::string_view zone = "");

  // The first instant of the schedule strictly after `after`, or nullopt if there is none
  // before kCronEnd (e.g. "0 0 30 2 *"). Bounded work: it steps by month, day, hour and
  // minute, never second by second.
  std::optional<time_point> next(time_point after) const;

  // The text and zone as given to parse (zone "" for UTC).
  const std::string& expr() const noexcept { return expr_; }
  const std::string& zone() const noexcept { return zone_; }

  // The zone's offset from UTC at `t` (whole seconds).
  std::chrono::seconds utc_offset(time_point t) const;
  // `t` (cut to the second) in the schedule's zone: "YYYY-MM-DDTHH:MM:SS+HH:MM".
  std::string format(time_point t) const;

 private:
  CronSchedule() = default;
  // Vixie: both day fields restricted -> either matches; otherwise both must.
  bool day_matches(unsigned day, unsigned weekday) const;
  // The first matching local civil time (seconds since 1970-01-01 as if UTC) in [lo, hi).
  std::optional<long long> first_local_match(long long lo, long long hi) const;

  std::string expr_, zone_;
  const date::time_zone* tz_ = nullptr;  // nullptr = UTC; entries of the tz database live forever
  std::bitset<60> seconds_, minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;    // 1..31
  std::bitset<13> months_;  // 1..12
  std::bitset<7> weekdays_; // 0..6, Sunday = 0
  bool days_star_ = false, weekdays_star_ = false;  // the field starts with '*'
};

}  // namespace taskpool
