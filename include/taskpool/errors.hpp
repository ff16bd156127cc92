// taskpool/errors.hpp — the exceptions taskpool throws.
//
// Every error taskpool raises on its own behalf derives from taskpool::Error, itself a
// std::runtime_error, so `catch (const taskpool::Error&)` catches all of them. Exceptions thrown
// by user tasks are never wrapped: Future::get() rethrows the task's own exception object.
//
// Thread-safety: these are plain value types; copies may be used from any thread.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace taskpool {

// Base of every taskpool error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bounded queue had no room: thrown by submit()/post() under WhenFull::reject.
class QueueFull : public Error {
 public:
  QueueFull() : Error("taskpool: queue is full") {}
};

// The pool (or scheduler) no longer accepts work because shutdown has begun.
class PoolClosed : public Error {
 public:
  PoolClosed() : Error("taskpool: pool is closed") {}
};

// An error caused by another exception, kept in cause() (its message is part of what()).
class CausedError : public Error {
 public:
  const std::exception_ptr& cause() const noexcept { return cause_; }

 protected:
  CausedError(const std::string& what, std::exception_ptr cause)
      : Error(what + " (" + describe(cause) + ")"), cause_(std::move(cause)) {}

 private:
  static std::string describe(const std::exception_ptr& e) {
    try {
      if (e) std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      return ex.what();
    } catch (...) {
      return "non-standard exception";
    }
    return "unknown";
  }
  std::exception_ptr cause_;
};

// on_thread_start threw: the pool is unusable. cause() is the initializer's exception.
class BrokenPool : public CausedError {
 public:
  explicit BrokenPool(std::exception_ptr cause)
      : CausedError("taskpool: pool is broken: a thread initializer threw", std::move(cause)) {}
};

// No worker thread could be started (thread creation failed, e.g. pthread_create with EAGAIN under
// a process or cgroup limit, or no memory for the thread). Thrown by the ThreadPool constructor
// when it cannot start min_threads threads, by resize() when it cannot reach the new minimum, and
// by a submission to a pool with no live thread that cannot start one: that task was not queued.
// cause() is the exception thread creation raised.
class ThreadStartFailed : public CausedError {
 public:
  explicit ThreadStartFailed(std::exception_ptr cause)
      : CausedError("taskpool: could not start a worker thread", std::move(cause)) {}
};

// get() on a future whose task was cancelled before it ran.
class Cancelled : public Error {
 public:
  Cancelled() : Error("taskpool: task was cancelled") {}
};

}  // namespace taskpool
