// tests/common/fault_injection.hpp — arming the pool's fault points and lifecycle hooks from a
// test (the hooks are declared in taskpool/detail/pool_hooks.hpp), and a watchdog for tests whose
// failure mode is a hang.
//
// The fault state is process-wide: a test arms it only around code that uses its own pool, and the
// RAII guards below disarm it even when an assertion returns early.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "taskpool/detail/pool_hooks.hpp"

namespace taskpool::test {

// Fails `point` `count` times (count < 0: until the scope ends) after `skip` passes succeed.
class ScopedFault {
 public:
  explicit ScopedFault(detail::FaultPoint point, int skip = 0, int count = -1) { detail::arm_fault(point, skip, count); }
  ~ScopedFault() { detail::disarm_faults(); }
  ScopedFault(const ScopedFault&) = delete;
  ScopedFault& operator=(const ScopedFault&) = delete;
};

// Runs `fn` each time the engine passes `point`, until the scope ends.
class ScopedHook {
 public:
  ScopedHook(detail::HookPoint point, std::function<void()> fn) : point_(point), fn_(std::move(fn)) {
    detail::set_test_hook(point_, &ScopedHook::call, this);
  }
  ~ScopedHook() { detail::set_test_hook(point_, nullptr, nullptr); }
  ScopedHook(const ScopedHook&) = delete;
  ScopedHook& operator=(const ScopedHook&) = delete;

 private:
  static void call(void* self) { static_cast<ScopedHook*>(self)->fn_(); }
  detail::HookPoint point_;
  std::function<void()> fn_;
};

// Aborts the process when its scope is not left within `limit`: a test whose bug shows as a hang
// (in a wait, a destructor or a constructor) then fails at once with its name, not at the CTest
// timeout. The limit bounds a hang only; it is no timing assertion.
class HangGuard {
 public:
  explicit HangGuard(std::chrono::seconds limit = std::chrono::seconds(60)) : what_(current_test()) {
    watcher_ = std::thread([this, limit] {
      std::unique_lock lk(mu_);
      if (!cv_.wait_for(lk, limit, [&] { return done_; })) {
        std::fprintf(stderr, "HangGuard: %s did not finish within %lld s (hang)\n", what_.c_str(),
                     static_cast<long long>(limit.count()));
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  ~HangGuard() {
    {
      std::lock_guard lk(mu_);
      done_ = true;
    }
    cv_.notify_all();
    watcher_.join();
  }
  HangGuard(const HangGuard&) = delete;
  HangGuard& operator=(const HangGuard&) = delete;

 private:
  static std::string current_test() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    return info ? std::string(info->test_suite_name()) + "." + info->name() : "a test";
  }
  std::string what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;  // guarded by mu_
  std::thread watcher_;
};

}  // namespace taskpool::test
