// taskpool/detail/continuation.hpp — how Future::then calls its continuation and what it returns.
// Not part of the API.
//
// Design note. then(f) calls f(Future<T>) when f accepts that (f sees every outcome), else f(T) or
// f() on success only: a failure or a cancellation of the source then passes to the result
// unchanged, without calling f. then_result_t is the type of that call; run_continuation applies
// it to a completed source and completes the result's Promise. It runs inside the source's
// callback (after the source's outcome is published, see shared_state.hpp), so it reads the
// source's phase and error without further synchronization.
//
// Thread-safety / blocking: run_continuation runs once per continuation, on the completing thread
// or a CompletionQueue's draining thread; it blocks only as f does.
#pragma once

#include <type_traits>
#include <utility>

#include "taskpool/detail/shared_state.hpp"

namespace taskpool::detail {

template <class T, class F>
constexpr bool takes_future_v = std::is_invocable_v<F&, Future<T>>;

// SFINAE-friendly, as task_result (callable.hpp).
template <class T, class F>
struct then_result : std::invoke_result<F&, Future<T>> {};
template <class T, class F>
  requires(!takes_future_v<T, F> && std::is_void_v<T>)
struct then_result<T, F> : std::invoke_result<F&> {};
template <class T, class F>
  requires(!takes_future_v<T, F> && !std::is_void_v<T>)
struct then_result<T, F> : std::invoke_result<F&, T> {};
template <class T, class F>
using then_result_t = typename then_result<T, F>::type;

// Applies continuation f to the completed future `src`, completing `out`.
template <class T, class U, class F>
void run_continuation(F& f, Future<T> src, Promise<U>& out) noexcept {
  if constexpr (takes_future_v<T, F>) {
    out.fulfil_with([&]() -> U { return f(std::move(src)); });
  } else {
    auto* s = state_of(src);
    if (s->phase() == SharedStateBase::kCancelled) {
      out.cancel();
    } else if (s->error) {
      out.fail(s->error);
    } else if constexpr (std::is_void_v<T>) {
      out.fulfil_with([&]() -> U { return f(); });
    } else {
      out.fulfil_with([&]() -> U { return f(src.get()); });
    }
  }
}

}  // namespace taskpool::detail
