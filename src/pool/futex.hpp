// src/pool/futex.hpp — the one blocking primitive of the engine (Linux futex).
//
// futex_wait sleeps while the 32-bit word at `addr` equals `expected`; it may return spuriously,
// so callers re-check their condition in a loop. Data never travels through the futex: every
// condition is an atomic that the caller re-reads, which keeps ThreadSanitizer's model exact.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace taskpool::detail {

// Returns false when `timeout` elapsed; true on wake-up, value mismatch or spurious return.
bool futex_wait(const void* addr, std::uint32_t expected, std::optional<std::chrono::nanoseconds> timeout) noexcept;
void futex_wake(const void* addr, int count) noexcept;

}  // namespace taskpool::detail
