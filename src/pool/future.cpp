// src/pool/future.cpp — the non-template half of Future's shared state (design note:
// taskpool/detail/shared_state.hpp), and report_orphan_exception.
#include <algorithm>
#include <bit>
#include <climits>
#include <cstdio>
#include <optional>

#include "pool/cpu_relax.hpp"
#include "pool/futex.hpp"
#include "pool/help.hpp"
#include "taskpool/detail/orphan_exception.hpp"
#include "taskpool/detail/shared_state.hpp"

namespace taskpool::detail {

thread_local HelpFn tl_help = nullptr;
thread_local void* tl_help_arg = nullptr;

namespace {
CallbackNode* const kClosed = reinterpret_cast<CallbackNode*>(std::uintptr_t{1});
static_assert(std::endian::native == std::endian::little, "the futex word is the low half of state_");
}

SharedStateBase::~SharedStateBase() {
  // Callbacks still registered (the state died without completing: only possible for states
  // nobody could complete) are destroyed without running.
  CallbackNode* n = callbacks_.load(std::memory_order_relaxed);
  while (n != nullptr && n != kClosed) {
    CallbackNode* next = n->next;
    delete n;
    n = next;
  }
}

bool SharedStateBase::try_start() noexcept {
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kPhaseMask) != kPending) return false;
    if (state_.compare_exchange_weak(s, (s & ~std::uint64_t{kPhaseMask}) | kRunning, std::memory_order_acquire, std::memory_order_relaxed))
      return true;
  }
}

bool SharedStateBase::try_cancel() noexcept {
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  for (;;) {
    if ((s & kPhaseMask) != kPending) return false;
    if (state_.compare_exchange_weak(s, (s & ~std::uint64_t{kPhaseMask}) | kCancelled, std::memory_order_acq_rel,
                                     std::memory_order_relaxed))
      break;
  }
  if (s & kWaiters) futex_wake(futex_word(), INT_MAX);
  if (s & kCallbacks) publish_final(kCancelled);
  return true;
}

void SharedStateBase::finish() noexcept {
  // running -> done by adding the difference: only the claimer changes the phase now, while
  // waiters may still set flags and owners change the count.
  std::uint64_t s = state_.fetch_add(kDone - kRunning, std::memory_order_acq_rel);
  if (s & kWaiters) futex_wake(futex_word(), INT_MAX);
  if (s & kCallbacks) publish_final(kDone);
}

void SharedStateBase::finish_and_release() noexcept {
  std::uint64_t s = state_.load(std::memory_order_relaxed);
  while ((s & (kWaiters | kCallbacks)) == 0) {
    if (state_.compare_exchange_weak(s, s + (kDone - kRunning) - kRefOne, std::memory_order_acq_rel,
                                     std::memory_order_relaxed)) {
      if ((s >> kRefShift) == 1) delete this;
      return;
    }
  }
  finish();
  release();
}

void SharedStateBase::publish_final(std::uint32_t) noexcept {
  CallbackNode* head = callbacks_.exchange(kClosed, std::memory_order_acq_rel);
  CallbackNode* ordered = nullptr;  // the stack is newest-first; run in registration order
  while (head != nullptr) {
    CallbackNode* next = head->next;
    head->next = ordered;
    ordered = head;
    head = next;
  }
  while (ordered != nullptr) {
    CallbackNode* next = ordered->next;
    ordered->invoke(*this);
    delete ordered;
    ordered = next;
  }
}

void SharedStateBase::add_callback(CallbackNode* node) noexcept {
  // Announce the callback in the state word first (see the design note); a final phase means
  // completion has passed (or is passing) without looking at the stack: run the node here.
  std::uint64_t s = state_.load(std::memory_order_acquire);
  while ((s & kCallbacks) == 0) {
    if ((s & kPhaseMask) >= kDone) {
      node->invoke(*this);
      delete node;
      return;
    }
    if (state_.compare_exchange_weak(s, s | kCallbacks, std::memory_order_acq_rel, std::memory_order_acquire)) break;
  }
  CallbackNode* head = callbacks_.load(std::memory_order_acquire);
  for (;;) {
    if (head == kClosed) {
      node->invoke(*this);
      delete node;
      return;
    }
    node->next = head;
    if (callbacks_.compare_exchange_weak(head, node, std::memory_order_acq_rel, std::memory_order_acquire)) return;
  }
}

bool SharedStateBase::wait_until(std::chrono::steady_clock::time_point deadline) const {
  // Most waits are short (a tiny task on an idle pool completes in microseconds): spin briefly
  // before the futex round trip, which alone costs several microseconds to sleep and wake.
  const auto spin_until = std::min(deadline, std::chrono::steady_clock::now() + std::chrono::microseconds(5));
  for (int i = 0; !is_ready(); ++i) {
    if ((i & 15) == 15 && std::chrono::steady_clock::now() >= spin_until) break;
    cpu_relax();
  }
  for (;;) {
    std::uint64_t s = state_.load(std::memory_order_acquire);
    if ((s & kPhaseMask) >= kDone) return true;
    if (!(s & kWaiters)) {
      if (!state_.compare_exchange_weak(s, s | kWaiters, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      s |= kWaiters;
    }
    std::optional<std::chrono::nanoseconds> timeout;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      timeout = deadline - now;
    }
    futex_wait(futex_word(), static_cast<std::uint32_t>(s), timeout);
  }
}

void SharedStateBase::wait() const {
  if (tl_help == nullptr) {
    wait_until(std::chrono::steady_clock::time_point::max());
    return;
  }
  // On a worker: run queued work while waiting; when there is none, sleep briefly and look
  // again (the awaited task may be queued later, with every other worker busy).
  while (!is_ready()) {
    if (tl_help(tl_help_arg)) continue;
    wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
  }
}

void report_orphan_exception(const char* where, std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "taskpool: exception from %s: %s\n", where, ex.what());
  } catch (...) {
    std::fprintf(stderr, "taskpool: non-standard exception from %s\n", where);
  }
}

}  // namespace taskpool::detail
