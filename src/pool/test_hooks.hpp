// src/pool/test_hooks.hpp — the engine's side of the test hooks declared in
// taskpool/detail/pool_hooks.hpp (detail::arm_fault, detail::set_test_hook).
//
// A site asks inject_fault(p) whether to fail now; run_test_hook(p) calls a test's callback. Both
// are one relaxed load of a word that is zero unless a test armed something, so they may sit on
// rare paths of production code (thread start, deque growth, the sleepers' barrier, resize).
//
// Thread-safety: callable from any thread. Blocking: a disarmed site never blocks; an armed one
// takes the hooks' mutex briefly, and run_test_hook runs the test's callback.
#pragma once

#include <atomic>

#include "taskpool/detail/pool_hooks.hpp"

namespace taskpool::detail {

extern std::atomic<unsigned> g_armed_faults;  // bit p: FaultPoint p is armed
extern std::atomic<unsigned> g_armed_hooks;   // bit p: HookPoint p has a callback
bool take_fault(FaultPoint p) noexcept;
void call_test_hook(HookPoint p) noexcept;

inline bool inject_fault(FaultPoint p) noexcept {
  if ((g_armed_faults.load(std::memory_order_relaxed) & (1u << static_cast<unsigned>(p))) == 0) [[likely]]
    return false;
  return take_fault(p);
}

inline void run_test_hook(HookPoint p) noexcept {
  if ((g_armed_hooks.load(std::memory_order_relaxed) & (1u << static_cast<unsigned>(p))) == 0) [[likely]] return;
  call_test_hook(p);
}

}  // namespace taskpool::detail
