// taskpool/detail/callable.hpp — what a task is: a callable with its bound arguments, stored by
// value, called with a std::stop_token first when it accepts one. Not part of the API.
//
// Design note. Submission forms take `f, args...` and store decay-copies of both inline in the
// task node (Callable), so a task costs one allocation whatever it binds. The Task concept is the
// "put with a type check": a submission compiles only when f can be called with the stored
// arguments, optionally preceded by a std::stop_token; task_result_t is what that call returns.
// f and the arguments are called as lvalues (the stored copies; std::thread passes rvalues), which
// is what Task and task_result_t check.
// [[no_unique_address]] keeps an empty lambda and an empty argument pack at zero bytes.
//
// Thread-safety: a Callable is used by one thread at a time (the one running or discarding its
// node). Blocking: never, apart from what f itself does.
#pragma once

#include <functional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>

namespace taskpool::detail {

template <class F, class... Args>
constexpr bool takes_stop_token_v = std::is_invocable_v<F&, std::stop_token, Args&...>;

// SFINAE-friendly (no `type` when f cannot be called so): Clang 14 substitutes a candidate's
// return type before it checks the candidate's constraints, so submit(Priority, f) must not be a
// hard error when it tries the submit(f, args...) overload with f = Priority.
template <class F, class... Args>
struct task_result : std::invoke_result<F&, Args&...> {};
template <class F, class... Args>
  requires takes_stop_token_v<F, Args...>
struct task_result<F, Args...> : std::invoke_result<F&, std::stop_token, Args&...> {};
template <class F, class... Args>
using task_result_t = typename task_result<std::decay_t<F>, std::decay_t<Args>...>::type;

template <class F, class... Args>
concept Task = std::is_invocable_v<std::decay_t<F>&, std::decay_t<Args>&...> ||
               std::is_invocable_v<std::decay_t<F>&, std::stop_token, std::decay_t<Args>&...>;

template <class F, class... Args>
class Callable {
 public:
  template <class G, class... A>
  explicit Callable(G&& g, A&&... a) : f_(std::forward<G>(g)), args_(std::forward<A>(a)...) {}
  decltype(auto) operator()(std::stop_token token) {
    if constexpr (takes_stop_token_v<F, Args...>) {
      return std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(f_, std::move(token), a...); }, args_);
    } else {
      (void)token;
      return std::apply([&](auto&... a) -> decltype(auto) { return std::invoke(f_, a...); }, args_);
    }
  }

 private:
  [[no_unique_address]] F f_;
  [[no_unique_address]] std::tuple<Args...> args_;
};

}  // namespace taskpool::detail
