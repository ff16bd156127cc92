// taskpool/detail/thread_annotations.hpp — lock annotations the compiler checks, and the mutex
// types that carry them.
//
// Design note. Clang's -Wthread-safety proves at compile time that every member annotated
// TP_GUARDED_BY(mu) is touched only with mu held, and that functions annotated TP_REQUIRES(mu) are
// called only with it held. libstdc++'s std::mutex carries no annotations, so the components
// that promise "mu guards X" use Mutex / MutexLock below: a std::mutex and a std::unique_lock with
// the capability attributes added, nothing else (same size, same code). Condition variables
// wait on MutexLock::native(); the wait releases and re-takes the lock inside the call, which the
// analysis need not see (the lock is held before and after). Under GCC the macros expand to
// nothing. scripts/test builds the whole tree with Clang, -Wthread-safety -Werror.
//
// Thread-safety: as std::mutex. Blocking: lock() blocks until the mutex is free.
#pragma once

#include <mutex>

#if defined(__clang__)
#define TP_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define TP_THREAD_ANNOTATION(x)
#endif

#define TP_CAPABILITY(x) TP_THREAD_ANNOTATION(capability(x))
#define TP_SCOPED_CAPABILITY TP_THREAD_ANNOTATION(scoped_lockable)
#define TP_GUARDED_BY(x) TP_THREAD_ANNOTATION(guarded_by(x))
#define TP_PT_GUARDED_BY(x) TP_THREAD_ANNOTATION(pt_guarded_by(x))
#define TP_REQUIRES(...) TP_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define TP_EXCLUDES(...) TP_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define TP_ACQUIRE(...) TP_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define TP_RELEASE(...) TP_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TP_TRY_ACQUIRE(...) TP_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define TP_RETURN_CAPABILITY(x) TP_THREAD_ANNOTATION(lock_returned(x))
#define TP_NO_THREAD_SAFETY_ANALYSIS TP_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace taskpool::detail {

class TP_CAPABILITY("mutex") Mutex {
 public:
  void lock() TP_ACQUIRE() { mu_.lock(); }
  void unlock() TP_RELEASE() { mu_.unlock(); }
  bool try_lock() TP_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  std::mutex& native() noexcept { return mu_; }

 private:
  std::mutex mu_;
};

// A scoped lock of a Mutex (std::unique_lock underneath, so a condition variable can wait on it).
class TP_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& m) TP_ACQUIRE(m) : lk_(m.native()) {}
  ~MutexLock() TP_RELEASE() = default;
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  // Temporarily drop the lock (e.g. around a store call) and take it back.
  void unlock() TP_RELEASE() { lk_.unlock(); }
  void lock() TP_ACQUIRE() { lk_.lock(); }
  std::unique_lock<std::mutex>& native() noexcept { return lk_; }

 private:
  std::unique_lock<std::mutex> lk_;
};

}  // namespace taskpool::detail
