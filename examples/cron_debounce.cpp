// Issue 14: "every weekday at 9:00 in my time zone", and "drop the user a minute after their last
// image, but at most ten minutes after the first". A cron series in a zone plus a debounced action
// with a maximum wait. A ManualClock stands in for real time so the example finishes at once;
// with the default clock it is the same code.
#include <taskpool/taskpool.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

int main() {
  using namespace std::chrono_literals;
  taskpool::ThreadPool pool(2);
  // Friday 2026-01-02 12:00 UTC (07:00 in New York).
  taskpool::ManualClock clock(taskpool::ManualClock::steady_time{} + 1h,
                              std::chrono::system_clock::time_point{std::chrono::seconds(1'767'355'200)});
  taskpool::Scheduler sched(pool, {.clock = &clock});

  // Weekdays at 09:00 New York time, whatever the daylight-saving rules do to UTC.
  auto standup_cron = taskpool::CronSchedule::parse("0 9 * * MON-FRI", "America/New_York");
  std::atomic<int> standups{0};
  auto standup = sched.schedule_cron(standup_cron, [&] {
    ++standups;
    std::printf("stand-up at %s\n", standup_cron.format(clock.system_now()).c_str());
  });

  // One image every 30 s for 15 minutes: without max_wait the user would stay in image mode
  // until a minute after the last image; with it, they are dropped ten minutes after the first.
  const auto first_image = clock.now();
  for (int i = 0; i < 30; ++i) {
    auto drop = sched.debounce("img-search:alice", 1min, [&, i] {
      std::printf("alice left image-search mode %lld s after her first image (%d images)\n",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::seconds>(clock.now() - first_image).count()),
                  i + 1);
    }, {.max_wait = 10min});
    clock.advance(30s);
    if (auto due = drop.next_run(); !due || *due <= clock.now()) {  // fell due: wait for it
      drop.future().wait();
      break;
    }
  }

  // Jump the clock to each planned instant: Friday, then over the weekend to Monday and Tuesday.
  for (int i = 0; i < 3; ++i) {
    const auto planned = *standup.next_run();
    clock.advance(planned - clock.now());
    while (!standup.next_run() || *standup.next_run() <= planned) std::this_thread::yield();  // ran, re-planned
  }
  standup.cancel();
  std::printf("%d stand-ups\n", standups.load());
}
