// taskpool/time_text.hpp — the text forms of times and durations that the task table's
// command, its record format and its HTTP API accept and print. One home for each parser, so
// every entry point accepts the same forms and refuses the same mistakes.
//
// Thread-safety: every function is reentrant. Blocking: none (parse_time and format_time read
// the process's local time zone through the C library).
// Errors: bad text throws std::invalid_argument with a one-line message naming the text.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace taskpool {

using wall_time = std::chrono::system_clock::time_point;

// The range of times a task may carry, and of the durations added to them: every entry point
// (command, records, C++ API, HTTP) refuses what lies outside, so no sum of a valid time and a
// valid duration overflows system_clock (nanoseconds since 1970, good until 2262).
inline constexpr wall_time kMinTime{};                                                    // 1970-01-01T00:00:00Z
inline constexpr wall_time kMaxTime{std::chrono::seconds(7'258'118'400)};                 // 2200-01-01T00:00:00Z
inline constexpr std::chrono::milliseconds kMaxDuration{std::chrono::hours(24 * 18'250)};  // 50 years

// Throw std::invalid_argument naming `field` when t is outside [kMinTime, kMaxTime), or d
// outside [0, kMaxDuration].
void check_time(wall_time t, std::string_view field);
void check_duration(std::chrono::milliseconds d, std::string_view field);

// "250ms", "30s", "5m", "2h", "1d" and sums like "1h30m"; a bare number is seconds. Refuses
// anything outside [0, kMaxDuration]. `field` (e.g. "--every", "repeat_every") starts the error
// message when given.
std::chrono::milliseconds parse_duration(std::string_view text, std::string_view field = {});

// "2021-11-26 10:13:14" (local time), "2021-11-26T10:13:14+08:00", "...Z", optional fractional
// seconds (milliseconds kept), or an integer number of seconds since the epoch. Refuses dates
// and times that do not exist (2021-02-30, 24:00:00, 23:59:60), offsets beyond ±14:00, a local
// time skipped by a daylight-saving change, and anything outside [kMinTime, kMaxTime). A local
// time that occurs twice (clocks going back) is the earlier instant. `field` as above.
wall_time parse_time(std::string_view text, std::string_view field = {});

// Local time, "YYYY-MM-DD HH:MM:SS" (for people: tables, the command's text output).
std::string format_time(wall_time t);
// Local time with milliseconds (when not zero) and the UTC offset, "2021-11-26 10:13:14.250+08:00":
// exact and unambiguous, parse_time reads it back to the same instant (the record format).
std::string format_time_precise(wall_time t);
// UTC in ISO 8601 with milliseconds, "2021-11-26T02:13:14.250Z" (log lines).
std::string format_time_utc(wall_time t);

}  // namespace taskpool
