// taskpool/cron.hpp — PLACEHOLDER from branch `sched` (the `cron` branch owns the real file; the
// coordinator replaces this one when it merges). Same API as the contract: parse() throws
// std::invalid_argument naming the field and the text; next(after) is the first instant strictly
// after `after`, nullopt when none. This stand-in supports only `*` and plain numbers in five
// fields (minute hour day-of-month month day-of-week), zone "" or "UTC".
//
// Thread-safety: a parsed CronSchedule is immutable; const members may be called concurrently.
// Blocking: none.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace taskpool {

class CronSchedule {
 public:
  static CronSchedule parse(std::string_view expr, std::string_view zone);
  std::optional<std::chrono::system_clock::time_point> next(std::chrono::system_clock::time_point after) const;

 private:
  int field_[5] = {-1, -1, -1, -1, -1};  // -1: `*`
};

}  // namespace taskpool
