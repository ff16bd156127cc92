// tests/common/test_util.hpp — helpers shared by the test files.
//
// Tests never sleep to create an ordering: they block tasks on a Gate and wait for observable
// states with eventually(), whose deadline only bounds a hang (the CTest timeout is the backstop).
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
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
// Between polls it sleeps 1 ms: a predicate that reads the store takes the store's mutex, and
// polling it back to back starved the threads under test of that mutex (std::mutex is not fair).
inline bool eventually(const std::function<bool()>& pred, std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
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

// A fresh directory per test (named after the process and the test), removed afterwards.
class TempDir {
 public:
  TempDir() {
    path_ = std::filesystem::temp_directory_path() /
            ("taskpool-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Recursive fib where every call submits one child to `pool` and get()s it from inside a task:
// exercises the deques, stealing and helping together.
template <class Pool>
long fork_join_fib(Pool& pool, int n) {
  if (n < 2) return n;
  auto a = pool.submit([&pool, n] { return fork_join_fib(pool, n - 1); });
  long b = fork_join_fib(pool, n - 2);
  return a.get() + b;
}

}  // namespace taskpool::test
