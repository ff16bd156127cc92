// taskpool/options.hpp — configuration and statistics types of ThreadPool.
//
// Plain value types with no synchronization of their own; build an Options with designated
// initializers and hand it to the ThreadPool constructor:
//   taskpool::ThreadPool pool({.min_threads = 1, .max_threads = 8, .queue_capacity = 1024,
//                              .when_full = taskpool::WhenFull::reject});
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <string>

namespace taskpool {

// What a submission does when a bounded queue (Options::queue_capacity > 0) is full.
enum class WhenFull {
  block,        // the submitting thread waits for room (submit/post); try_submit never waits
  reject,       // submit/post throw QueueFull
  caller_runs,  // the task runs at once on the submitting thread
};

// Number of priority levels: Priority{0} (lowest) .. Priority{kPriorityLevels - 1} (highest).
inline constexpr int kPriorityLevels = 10;

// Scheduling priority of a task. Higher values start first among queued tasks; FIFO within a level.
// The policy is strict: a lower level runs only when no higher level has queued work (see
// docs/design.md, "Priorities"). Values outside [0, kPriorityLevels) are rejected with
// std::invalid_argument.
struct Priority {
  int value = 5;
};
inline constexpr Priority kDefaultPriority{5};

// How shutdown() treats work that has not finished.
enum class Shutdown {
  drain,           // run everything already queued, then stop (close())
  cancel_pending,  // queued tasks are cancelled; running tasks finish
  terminate,       // queued tasks are cancelled; running tasks get stop requested; then join
};

struct Options {
  std::size_t min_threads = 0;  // threads kept alive while idle
  std::size_t max_threads = 0;  // 0 = std::thread::hardware_concurrency()
  std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);  // idle threads above min exit
  std::size_t queue_capacity = 0;  // 0 = unbounded; otherwise the most tasks queued (not running)
  WhenFull when_full = WhenFull::block;
  std::string name = "taskpool";  // OS thread names: name-0, name-1, ... (truncated to 15 bytes)
  // Called on each worker thread as it starts / stops, with the worker's index. If on_thread_start
  // throws, the pool becomes broken: submissions throw BrokenPool and queued futures fail with it.
  std::function<void(std::size_t)> on_thread_start, on_thread_stop;
  // Receives exceptions escaping post()ed tasks (they have no future). Default: one line to stderr.
  std::function<void(std::exception_ptr)> on_error;
};

// A snapshot of a pool's counters. Each field is read without stopping the pool, so fields may
// be mutually inconsistent by the few tasks that moved while stats() ran; every counter is exact
// once the pool is idle.
struct Stats {
  std::size_t threads = 0;       // live worker threads
  std::size_t idle_threads = 0;  // workers not running a task
  std::size_t running = 0;       // tasks running now
  std::size_t queued = 0;        // tasks accepted and not yet started
  std::array<std::size_t, kPriorityLevels> queued_by_priority{};
  std::uint64_t submitted = 0;   // accepted tasks (including ones run by caller_runs)
  std::uint64_t completed = 0;   // ran and returned normally
  std::uint64_t failed = 0;      // ran and threw
  std::uint64_t cancelled = 0;   // never ran: cancelled, dropped by shutdown or by a broken pool
  std::uint64_t rejected = 0;    // refused because the queue was full (including empty try_submit)
  std::size_t blocked_submitters = 0;  // threads waiting for room in a full bounded queue
  std::size_t min_threads = 0, max_threads = 0;
  bool closed = false;           // shutdown has begun: submissions throw PoolClosed
  bool broken = false;           // an on_thread_start threw
};

}  // namespace taskpool
