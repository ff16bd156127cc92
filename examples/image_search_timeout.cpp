// Origin note 000: "drop a user from image-search mode one minute after their last image".
// Every image re-arms a debounced timer, so the deadline slides. A ManualClock stands in for
// real time so the example finishes at once; with the default clock it is the same code.
#include <taskpool/taskpool.hpp>

#include <cstdio>
#include <mutex>
#include <set>
#include <string>

int main() {
  using namespace std::chrono_literals;
  taskpool::ThreadPool pool(2);
  taskpool::ManualClock clock;
  taskpool::Scheduler sched(pool, {.clock = &clock});

  std::mutex mu;
  std::set<std::string> in_image_mode;  // guarded by mu
  auto on_image = [&](const std::string& user) {
    {
      std::lock_guard lk(mu);
      in_image_mode.insert(user);
    }
    return sched.debounce("img-search:" + user, 60s, [&, user] {
      std::lock_guard lk(mu);
      in_image_mode.erase(user);
      std::printf("%s left image-search mode\n", user.c_str());
    });
  };

  on_image("alice");
  clock.advance(40s);
  auto last = on_image("alice");  // another image: the deadline moves to t = 100 s
  on_image("bob");                // bob's deadline: t = 100 s too
  clock.advance(59s);             // t = 99 s: both still in image mode
  {
    std::lock_guard lk(mu);
    std::printf("at t=99s: %zu users in image-search mode\n", in_image_mode.size());
  }
  clock.advance(1s);  // t = 100 s: both time out
  last.future().get();
  pool.wait_idle();
  std::lock_guard lk(mu);
  std::printf("at t=100s: %zu users in image-search mode\n", in_image_mode.size());
}
