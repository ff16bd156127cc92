// tests/common/test_util.hpp — helpers shared by the test files.
//
// Tests never sleep to create an ordering: they block tasks on a Gate and wait for observable
// states with eventually(), whose deadline only bounds a hang (the CTest timeout is the backstop).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace taskpool::test {

// A one-shot barrier that tasks wait on until the test opens it.
class Gate {
 public:
  void open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;  // guarded by mu_
};

// Counts arrivals; wait_for(n) blocks until n have arrived.
class Arrivals {
 public:
  void arrive() {
    std::lock_guard lk(mu_);
    ++n_;
    cv_.notify_all();
  }
  void wait_for(int n) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return n_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;  // guarded by mu_
};

// Polls `pred` until it holds; false after `limit` (a hang guard, not a timing assertion).
inline bool eventually(const std::function<bool()>& pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// Multiplier for stress sizes: TASKPOOL_STRESS_SCALE (sanitizer runs set it below 1).
inline double stress_scale() {
  const char* s = std::getenv("TASKPOOL_STRESS_SCALE");
  return s ? std::atof(s) : 1.0;
}
inline std::size_t scaled(std::size_t n) {
  auto v = static_cast<std::size_t>(static_cast<double>(n) * stress_scale());
  return v == 0 ? 1 : v;
}

// Thread counts every concurrency test runs with.
inline std::vector<std::size_t> thread_counts() { return {1, 2, 4, 8}; }
inline std::string thread_count_name(const ::testing::TestParamInfo<std::size_t>& info) {
  return "threads_" + std::to_string(info.param);
}

}  // namespace taskpool::test
