// src/pool/cpu_relax.hpp — the pause inside a spin loop.
//
// A spinning thread tells the CPU it is waiting: on x86 `pause` (25-140 ns depending on the CPU)
// saves power and the pipeline flush on leaving the loop, and frees the core for a hyperthread
// sibling; on AArch64 `yield` is the same hint. Other targets spin without a hint. Used by the
// spin lock, the idle workers' spin and Future's short spin before it sleeps.
//
// Thread-safety: none needed. Blocking: never (one instruction).
#pragma once

namespace taskpool::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace taskpool::detail
