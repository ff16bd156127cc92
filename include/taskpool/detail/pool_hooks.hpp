// taskpool/detail/pool_hooks.hpp — fault injection and lifecycle callbacks inside the pool, for
// tests (tests/common/fault_injection.hpp wraps them). Not part of the API.
//
// Design note. The pool's failure points (thread start, worker-slot allocation, deque growth, the
// sleepers' heavy barrier) and two race windows (before resize() and a spawn take the threads
// lock) are always compiled in: a disarmed site costs one relaxed load of a word that is zero
// unless a test armed something (src/pool/test_hooks.hpp), and no site is on a per-task path.
// The state is process-wide: arm it only while no other code of the process uses a pool. Arming
// and disarming take a mutex; a site that sees its bit set takes it too, so a plan's skip/count
// is applied exactly.
//
// Thread-safety: every function may be called from any thread. Blocking: never (a short lock).
// A hook callback runs on the engine's thread at that point, with no pool lock held.
#pragma once

#include <cstddef>
#include <cstdint>

namespace taskpool::detail {

enum class FaultPoint : unsigned char {
  thread_start,  // starting a worker thread fails with std::system_error(EAGAIN), as pthread_create
  worker_alloc,  // allocating a new worker slot throws std::bad_alloc
  deque_grow,    // growing a worker's deque fails as if its allocation threw std::bad_alloc
  membarrier,    // the sleepers' heavy barrier fails, as membarrier(2) returning -1
};
inline constexpr std::size_t kFaultPoints = 4;
// From now on the next `skip` passes through `p` succeed, then `count` fail (count < 0: all).
void arm_fault(FaultPoint p, int skip, int count) noexcept;
void disarm_faults() noexcept;
std::uint64_t fault_hits(FaultPoint p) noexcept;  // failures injected at `p` so far

enum class HookPoint : unsigned char {
  resize_unlocked,  // in resize(), after its closed() check, before it takes the threads lock
  spawn_unlocked,   // starting a worker for queued work (a submission's or go_busy's), before the lock
};
inline constexpr std::size_t kHookPoints = 2;
using HookFn = void (*)(void* arg);
void set_test_hook(HookPoint p, HookFn fn, void* arg) noexcept;  // fn == nullptr removes it

}  // namespace taskpool::detail
