// A downstream program using the executor alone: taskpool/core.hpp and taskpool::core (whose cron
// schedules need date-tz at link time, found through the package config).
#include <taskpool/core.hpp>

#include <cstdio>

int main() {
  taskpool::ThreadPool pool(2);
  auto cron = taskpool::CronSchedule::parse("0 9 * * MON-FRI", "Europe/London");
  auto next = cron.next(std::chrono::system_clock::time_point{std::chrono::seconds(1'767'225'600)});  // 2026-01-01Z
  std::printf("consumer ok %d cron %s\n", pool.submit([] { return 6 * 7; }).get(), next ? cron.format(*next).c_str() : "none");
}
