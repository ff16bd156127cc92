// src/pool/thread_pool.cpp — ThreadPool and its engine (PoolCore). See pool_core.hpp.
#include <pthread.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "pool/cpu_relax.hpp"
#include "pool/futex.hpp"
#include "pool/help.hpp"
#include "pool/pool_core.hpp"
#include "pool/test_hooks.hpp"
#include "taskpool/detail/orphan_exception.hpp"
#include "taskpool/detail/pool_access.hpp"

namespace taskpool {
namespace detail {

namespace {
thread_local Worker* tl_worker = nullptr;
constexpr int kSpinPolls = 256, kPausesPerPoll = 4, kYieldEvery = 16;  // an idle worker's spin before it sleeps
constexpr int kMaxHelpDepth = 64;
thread_local int tl_help_depth = 0;

std::size_t default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

Options normalize(Options o) {
  if (o.max_threads == 0) o.max_threads = std::max(default_threads(), o.min_threads);
  if (o.min_threads > o.max_threads)
    throw std::invalid_argument("taskpool: min_threads (" + std::to_string(o.min_threads) + ") exceeds max_threads (" +
                                std::to_string(o.max_threads) + ")");
  if (o.max_threads > ThreadPool::max_supported_threads())
    throw std::invalid_argument("taskpool: max_threads " + std::to_string(o.max_threads) + " exceeds " +
                                std::to_string(ThreadPool::max_supported_threads()));
  if (o.idle_timeout.count() < 0) throw std::invalid_argument("taskpool: idle_timeout is negative");
  return o;
}

bool help_trampoline(void* w) { return static_cast<Worker*>(w)->pool->help_one(static_cast<Worker*>(w)); }

// what() of a stored exception, for a diagnostic line (the pointer lives as long as `e`).
const char* what_of(const std::exception_ptr& e) noexcept {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
  }
  return "unknown error";
}

// Test hooks (test_hooks.hpp). The armed bits are read without the lock by the sites.
Mutex g_hooks_mu;
struct FaultPlan {
  int skip = 0, count = 0;
};
std::array<FaultPlan, kFaultPoints> g_fault_plan TP_GUARDED_BY(g_hooks_mu);
std::array<std::atomic<std::uint64_t>, kFaultPoints> g_fault_hits{};
std::array<std::pair<HookFn, void*>, kHookPoints> g_hook_fns TP_GUARDED_BY(g_hooks_mu){};
}  // namespace

std::atomic<unsigned> g_armed_faults{0};
std::atomic<unsigned> g_armed_hooks{0};

void arm_fault(FaultPoint p, int skip, int count) noexcept {
  const auto i = static_cast<std::size_t>(p);
  MutexLock lk(g_hooks_mu);
  g_fault_plan[i] = {skip, count};
  if (count != 0) {
    g_armed_faults.fetch_or(1u << i, std::memory_order_relaxed);
  } else {
    g_armed_faults.fetch_and(~(1u << i), std::memory_order_relaxed);
  }
}

void disarm_faults() noexcept {
  MutexLock lk(g_hooks_mu);
  g_fault_plan = {};
  g_armed_faults.store(0, std::memory_order_relaxed);
}

std::uint64_t fault_hits(FaultPoint p) noexcept {
  return g_fault_hits[static_cast<std::size_t>(p)].load(std::memory_order_relaxed);
}

bool take_fault(FaultPoint p) noexcept {
  const auto i = static_cast<std::size_t>(p);
  MutexLock lk(g_hooks_mu);
  FaultPlan& f = g_fault_plan[i];
  if (f.count == 0) return false;
  if (f.skip > 0) {
    --f.skip;
    return false;
  }
  if (f.count > 0 && --f.count == 0) g_armed_faults.fetch_and(~(1u << i), std::memory_order_relaxed);
  g_fault_hits[i].fetch_add(1, std::memory_order_relaxed);
  return true;
}

void set_test_hook(HookPoint p, HookFn fn, void* arg) noexcept {
  const auto i = static_cast<std::size_t>(p);
  MutexLock lk(g_hooks_mu);
  g_hook_fns[i] = {fn, arg};
  if (fn != nullptr) {
    g_armed_hooks.fetch_or(1u << i, std::memory_order_relaxed);
  } else {
    g_armed_hooks.fetch_and(~(1u << i), std::memory_order_relaxed);
  }
}

void call_test_hook(HookPoint p) noexcept {
  std::pair<HookFn, void*> h;
  {
    MutexLock lk(g_hooks_mu);
    h = g_hook_fns[static_cast<std::size_t>(p)];
  }
  if (h.first != nullptr) h.first(h.second);
}

PoolCore::PoolCore(ThreadPool* owner, Options opts)
    : owner_(owner),
      opts_(normalize(std::move(opts))),
      bounded_(opts_.queue_capacity > 0),
      min_threads_(opts_.min_threads),
      max_threads_(opts_.max_threads) {
  MutexLock lk(threads_mu_);
  while (threads_.load() < opts_.min_threads) {
    if (spawn_one_locked() != Spawn::started) {
      // No task was accepted yet: stop what did start (nothing may outlive a failed constructor).
      std::exception_ptr why = spawn_error_;
      lk.unlock();
      stop_workers();
      throw ThreadStartFailed(why);
    }
  }
}

PoolCore::~PoolCore() = default;

bool PoolCore::on_own_worker() const noexcept { return tl_worker != nullptr && tl_worker->pool == this; }

// ---- submission -------------------------------------------------------------------------------

void PoolCore::throw_closed_or_broken() const {
  if (broken_.load(std::memory_order_acquire)) throw BrokenPool(broken_cause_);
  throw PoolClosed();
}

EnqueueStatus PoolCore::reserve(std::size_t n, bool internal, Admission a, std::chrono::steady_clock::time_point deadline) {
  const std::size_t cap = opts_.queue_capacity;
  auto try_add = [&] {
    std::size_t q = queued_.load(std::memory_order_seq_cst);
    for (;;) {
      if (q != 0 && q + n > cap) return false;  // an oversized batch waits for an empty queue
      if (queued_.compare_exchange_weak(q, q + n, std::memory_order_seq_cst)) return true;
    }
  };
  if (a == Admission::overflow) {
    queued_.fetch_add(n, std::memory_order_seq_cst);
    return EnqueueStatus::queued;
  }
  if (try_add()) return EnqueueStatus::queued;
  if (a == Admission::no_wait) return EnqueueStatus::full;
  if (internal) {  // a worker never blocks on its own pool (deadlock); see thread_pool.hpp
    if (a == Admission::policy && opts_.when_full == WhenFull::reject) return EnqueueStatus::full;
    return EnqueueStatus::ran_inline;
  }
  if (a == Admission::policy) {
    if (opts_.when_full == WhenFull::reject) return EnqueueStatus::full;
    if (opts_.when_full == WhenFull::caller_runs) return EnqueueStatus::ran_inline;
  }
  MutexLock lk(space_mu_);
  space_waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool ok = false;
  for (;;) {
    if (closed_.load(std::memory_order_acquire) || broken_.load(std::memory_order_acquire)) break;
    if (try_add()) {
      ok = true;
      break;
    }
    if (a == Admission::until_deadline) {
      if (space_cv_.wait_until(lk.native(), deadline) == std::cv_status::timeout) {
        ok = try_add();
        break;
      }
    } else {
      space_cv_.wait(lk.native());
    }
  }
  space_waiters_.fetch_sub(1, std::memory_order_seq_cst);
  lk.unlock();
  if (ok) return EnqueueStatus::queued;
  if (closed_.load() || broken_.load()) throw_closed_or_broken();
  return EnqueueStatus::full;
}

void PoolCore::release_capacity(std::size_t n) noexcept {
  if (!bounded_ || n == 0) return;
  queued_.fetch_sub(n, std::memory_order_seq_cst);
  if (space_waiters_.load(std::memory_order_seq_cst) != 0) {
    MutexLock lk(space_mu_);
    space_cv_.notify_all();
  }
}

// Inlined into both callers: with n == 1 known, enqueue()'s copy is the short fork/join path.
[[gnu::always_inline]] inline EnqueueStatus PoolCore::enqueue_internal(Worker* w, TaskNode** nodes, std::size_t n) {
  // Draining still lets running tasks spawn children (they are part of finishing the work).
  if (phase_.load(std::memory_order_acquire) >= kCancelling) {
    release_capacity(n);
    for (std::size_t i = 0; i < n; ++i) nodes[i]->discard(nullptr);
    throw_closed_or_broken();
  }
  bump(w->internal_submitted, n);  // before the push: see "Idle detection"
  for (std::size_t i = 0; i < n; ++i) {
    // The deque holds one level at a time (see "Priority policy"); other levels go to the
    // shared list of their level, where they compete by priority.
    // A deque that cannot grow (no memory) sends the task there too: lists allocate nothing.
    const int l = nodes[i]->level();
    if (w->deque.size_approx() == 0) w->local_level = l;
    if (l == w->local_level && w->deque.push(nodes[i])) [[likely]] {
      bump(w->local_in[static_cast<std::size_t>(l)]);
    } else {
      push_global_one(nodes[i]);
    }
  }
  ec_.notify_one_after_publish();  // for deque pushes and list appends alike
  maybe_spawn();
  return EnqueueStatus::queued;
}

EnqueueStatus PoolCore::enqueue(TaskNode* node, Admission a, std::chrono::steady_clock::time_point deadline) {
  // Fork/join's path: a task spawned by a task of this unbounded pool skips the batch path's
  // admission steps (about a fifth of a skynet task's instructions went there).
  // The other path is a tail call taking the node by value (no stack slot of this frame escapes):
  // callgrind counts 3 instructions fewer per outside post than with the address taken here.
  Worker* w = tl_worker;
  if (!bounded_ && w != nullptr && w->pool == this) return enqueue_internal(w, &node, 1);
  return enqueue_external_one(w, node, a, deadline);
}

[[gnu::noinline]] EnqueueStatus PoolCore::enqueue_external_one(Worker* w, TaskNode* node, Admission a,
                                                               std::chrono::steady_clock::time_point deadline) {
  return enqueue_batch_from(w, &node, 1, a, deadline);
}

EnqueueStatus PoolCore::enqueue_batch(TaskNode** nodes, std::size_t n, Admission a,
                                      std::chrono::steady_clock::time_point deadline) {
  return enqueue_batch_from(tl_worker, nodes, n, a, deadline);
}

// `w`: the calling thread's worker (tl_worker), which enqueue() has read already.
[[gnu::always_inline]] inline EnqueueStatus PoolCore::enqueue_batch_from(
    Worker* w, TaskNode** nodes, std::size_t n, Admission a, std::chrono::steady_clock::time_point deadline) {
  if (n == 0) return EnqueueStatus::queued;
  auto discard_all = [&] {
    for (std::size_t i = 0; i < n; ++i) nodes[i]->discard(nullptr);
  };
  const bool internal = w != nullptr && w->pool == this;
  if (broken_.load(std::memory_order_acquire)) {
    discard_all();
    throw BrokenPool(broken_cause_);
  }
  if (bounded_) {
    EnqueueStatus st;
    try {
      st = reserve(n, internal, a, deadline);
    } catch (...) {
      discard_all();
      throw;
    }
    if (st == EnqueueStatus::full) {
      discard_all();
      rejected_.fetch_add(n, std::memory_order_relaxed);
      return st;
    }
    if (st == EnqueueStatus::ran_inline) {
      if (closed_.load(std::memory_order_acquire)) {
        discard_all();
        throw_closed_or_broken();
      }
      for (std::size_t i = 0; i < n; ++i) run_inline(nodes[i]);
      return st;
    }
  }
  if (internal) return enqueue_internal(w, nodes, n);
  // No live worker (a fresh lazy pool, or every worker exited idle): start one before queueing, so
  // that a failure is this caller's, for tasks that were never queued.
  if (threads_.load(std::memory_order_relaxed) == 0) [[unlikely]] {
    if (std::exception_ptr why = start_first_worker()) {
      release_capacity(n);
      discard_all();
      throw ThreadStartFailed(why);
    }
  }
  for (std::size_t i = 0; i + 1 < n; ++i) nodes[i]->set_next(nodes[i + 1]);
  nodes[n - 1]->set_next(nullptr);
  Level& L = levels_[static_cast<std::size_t>(nodes[0]->level())];
  {
    SpinGuard lk(L.mu);
    if (closed_.load(std::memory_order_relaxed)) {
      // fall through below, outside the lock
    } else {
      if (L.tail) {
        L.tail->set_next(nodes[0]);
      } else {
        L.head = nodes[0];
        nonempty_.fetch_or(1u << nodes[0]->level(), std::memory_order_release);
      }
      L.tail = nodes[n - 1];
      L.size.store(L.size.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
      L.pushed.store(L.pushed.load(std::memory_order_relaxed) + n, std::memory_order_release);
      n = 0;  // published
    }
  }
  if (n != 0) {
    release_capacity(n);
    discard_all();
    throw_closed_or_broken();
  }
  after_publish();
  return EnqueueStatus::queued;
}

void PoolCore::after_publish() noexcept {
  ec_.notify_one_after_publish();
  maybe_spawn();
}

// Never throws: the caller's tasks are queued already, so a failure to grow must not look like a
// failed submission (the workers there are run them; with none, spawn_for_work runs them).
void PoolCore::maybe_spawn() noexcept {
  // Loads after the notification; see "Thread count" in pool_core.hpp.
  // threads_ first: it rarely changes (its cache line stays shared), while idle_ flips with
  // every worker transition; a fixed pool at full size never reads idle_ here.
  if (threads_.load(std::memory_order_seq_cst) >= max_threads_.load(std::memory_order_relaxed)) return;
  if (idle_.load(std::memory_order_seq_cst) != 0) return;
  if (stopping_.load(std::memory_order_relaxed)) return;
  spawn_for_work();
}

[[gnu::noinline]] void PoolCore::spawn_for_work() noexcept {
  run_test_hook(HookPoint::spawn_unlocked);
  bool stranded = false;
  {
    MutexLock lk(threads_mu_);
    if (idle_.load() != 0 || threads_.load() >= max_threads_.load()) return;
    if (spawn_one_locked() != Spawn::failed) return;
    stranded = spawn_failed_locked();
  }
  if (stranded) run_stranded();
}

std::exception_ptr PoolCore::start_first_worker() noexcept {
  std::exception_ptr why;
  {
    MutexLock lk(threads_mu_);
    // Closed: no start; the submission then fails with PoolClosed when it tries to queue.
    if (threads_.load() != 0 || closed_.load()) return nullptr;
    if (spawn_one_locked() != Spawn::failed) return nullptr;
    why = spawn_error_;
    if (!spawn_failed_locked()) return why;
  }
  run_stranded();  // what others queued meanwhile, trusting the start that failed (see there)
  return why;
}

PoolCore::Spawn PoolCore::spawn_one_locked() noexcept {
  // Read under threads_mu_, which shutdown takes to join after setting stopping_: a resize or
  // submission racing close() cannot start a thread that nobody joins.
  if (stopping_.load(std::memory_order_seq_cst)) return Spawn::refused;
  std::size_t i = 0;
  for (; i < kMaxWorkers; ++i) {
    Worker* s = owned_[i].get();
    if (s == nullptr || !s->live.load(std::memory_order_acquire)) break;
  }
  if (i == kMaxWorkers) return Spawn::refused;
  if (!owned_[i]) {
    try {
      if (inject_fault(FaultPoint::worker_alloc)) throw std::bad_alloc();
      auto fresh = std::make_unique<Worker>();
      fresh->pool = this;
      fresh->index = i;
      fresh->rng = 0x9E3779B97F4A7C15ull * (i + 1);
      owned_[i] = std::move(fresh);
    } catch (...) {
      spawn_error_ = std::current_exception();
      return Spawn::failed;
    }
    slots_[i].store(owned_[i].get(), std::memory_order_release);
    if (slot_high_.load() < i + 1) slot_high_.store(i + 1, std::memory_order_release);
  }
  Worker* w = owned_[i].get();
  if (w->thread.joinable()) w->thread.join();  // a retired thread that already finished
  w->live.store(true, std::memory_order_release);
  w->idle = true;
  threads_.fetch_add(1, std::memory_order_seq_cst);
  idle_.fetch_add(1, std::memory_order_seq_cst);
  try {
    if (inject_fault(FaultPoint::thread_start)) throw std::system_error(EAGAIN, std::generic_category(), "pthread_create");
    w->thread = std::thread([this, w] { worker_main(w); });
  } catch (...) {
    threads_.fetch_sub(1, std::memory_order_seq_cst);
    idle_.fetch_sub(1, std::memory_order_seq_cst);
    w->live.store(false, std::memory_order_release);
    spawn_error_ = std::current_exception();
    return Spawn::failed;
  }
  spawn_failing_ = false;
  return Spawn::started;
}

bool PoolCore::spawn_failed_locked() noexcept {
  const std::size_t live = threads_.load();
  if (!spawn_failing_) {  // one line per run of failures, not one per attempt
    spawn_failing_ = true;
    std::fprintf(stderr, "taskpool: could not start a worker thread (%s); continuing with %zu\n", what_of(spawn_error_),
                 live);
  }
  return live == 0;
}

// After a failed start that left no live worker (read under threads_mu_, after the start's
// counts were taken back): queued work may have no worker that will see it, so the thread that
// failed runs it itself until the lists are empty or a worker is live again. Two ways there:
//  - a submitter queued work, must start a worker and cannot, and the last worker retired after
//    its final check (a submission to a pool with no worker starts one before queueing);
//  - a submitter read threads_/idle_ while another thread's start was under way (they count the
//    thread before it exists), so it queued and returned without starting one; that start failed.
// It drains every level (taking each lock), not only its own tasks: a submitter of the second
// kind that queued after this drain's last look saw the counts back at 0 (the list locks order
// them) and starts, or drains, itself.
void PoolCore::run_stranded() noexcept {
  RunContext ctx{stop_source_.get_token(), nullptr};
  while (threads_.load(std::memory_order_seq_cst) == 0) {
    TaskNode* t = pop_one_global();
    if (t == nullptr) break;
    release_capacity(1);
    if (phase_.load(std::memory_order_acquire) >= kCancelling) {
      t->discard(discard_reason());
      ext_cancelled_.fetch_add(1, std::memory_order_relaxed);
    } else {
      ctx.posted_error = nullptr;
      switch (t->run(ctx)) {  // consumes t
        case RunOutcome::ok: ext_ran_.fetch_add(1, std::memory_order_relaxed); break;
        case RunOutcome::failed: ext_ran_failed_.fetch_add(1, std::memory_order_relaxed); break;
        case RunOutcome::skipped: ext_cancelled_.fetch_add(1, std::memory_order_relaxed); break;
      }
      if (ctx.posted_error) report_error(std::exchange(ctx.posted_error, nullptr));
    }
    ext_finished_.fetch_add(1, std::memory_order_seq_cst);
    if (idle_waiters_.load(std::memory_order_seq_cst) != 0) notify_idle_waiters();
  }
}

TaskNode* PoolCore::pop_one_global() noexcept {
  for (int l = kPriorityLevels - 1; l >= 0; --l) {
    Level& L = levels_[static_cast<std::size_t>(l)];
    SpinGuard lk(L.mu);
    TaskNode* t = L.head;
    if (t == nullptr) continue;
    L.head = t->next();
    if (L.head == nullptr) {
      L.tail = nullptr;
      nonempty_.fetch_and(~(1u << l), std::memory_order_release);
    }
    L.size.store(L.size.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    return t;
  }
  return nullptr;
}

void PoolCore::run_inline(TaskNode* node) {
  RunContext ctx{stop_source_.get_token(), nullptr};
  RunOutcome o = node->run(ctx);
  ext_inline_.fetch_add(1, std::memory_order_relaxed);
  if (o == RunOutcome::failed) ext_inline_failed_.fetch_add(1, std::memory_order_relaxed);
  if (ctx.posted_error) report_error(ctx.posted_error);
}

// ---- workers ----------------------------------------------------------------------------------

void PoolCore::go_busy(Worker* w) noexcept {
  if (!w->idle) return;
  w->idle = false;
  // The last idle worker is taking a task while more work waits (a batch it moved to its deque,
  // or the injection lists): a submitter that saw this worker idle did not spawn, so spawn now.
  // The check is ordered after the idle_ RMW against submitters by order_with_publishers (the
  // seq_cst fence of the RMW protocol, or the heavy barrier: a deque push is a release store);
  // if that barrier failed the check proves nothing, so start a thread anyway (a spare one
  // exits after idle_timeout).
  if (idle_.fetch_sub(1, std::memory_order_seq_cst) == 1 &&
      threads_.load(std::memory_order_relaxed) < max_threads_.load(std::memory_order_relaxed)) {
    if (ec_.order_with_publishers() && !has_queued_work()) return;
    maybe_spawn();  // a failure leaves the work queued for this worker
  }
}

void PoolCore::go_idle(Worker* w) noexcept {
  if (w->idle) return;
  w->idle = true;
  w->idle_since = std::chrono::steady_clock::now();
  idle_.fetch_add(1, std::memory_order_seq_cst);
  // Publish `finished` seq_cst, then look for idle waiters (Dekker with wait_idle_until).
  w->finished.store(w->finished.load(std::memory_order_relaxed), std::memory_order_seq_cst);
  if (idle_waiters_.load(std::memory_order_seq_cst) != 0) notify_idle_waiters();
}

bool PoolCore::has_queued_work() const noexcept {
  if (nonempty_.load(std::memory_order_acquire) != 0) return true;
  std::size_t high = slot_high_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < high; ++i) {
    Worker* w = slots_[i].load(std::memory_order_acquire);
    if (w != nullptr && w->deque.size_approx() > 0) return true;
  }
  return false;
}

void PoolCore::notify_idle_waiters() noexcept {
  idle_epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake(&idle_epoch_, INT_MAX);
}

TaskNode* PoolCore::pop_global(Worker* w, int level) {
  Level& L = levels_[static_cast<std::size_t>(level)];
  std::array<TaskNode*, kMaxBatch> batch;
  std::size_t take = 0;
  // Room in the deque for the surplus, made before taking any (growing allocates and may fail:
  // a deque that cannot grow takes a smaller batch; the rest stays listed).
  const auto room = static_cast<std::size_t>(w->deque.reserve(kMaxBatch - 1));
  {
    SpinGuard lk(L.mu);
    if (L.head == nullptr) return nullptr;
    std::size_t n = L.size.load(std::memory_order_relaxed);
    std::size_t th = std::max<std::size_t>(1, threads_.load(std::memory_order_relaxed));
    // Surplus moves to the deque only where it keeps the deque single-level.
    bool can_move = w->local_level == level || w->deque.size_approx() == 0;
    std::size_t want = can_move ? std::clamp<std::size_t>(n / th, 1, std::min(kMaxBatch, room + 1)) : 1;
    TaskNode* t = L.head;
    while (take < want && t != nullptr) {
      batch[take++] = t;
      t = t->next();
    }
    L.head = t;
    if (t == nullptr) {
      L.tail = nullptr;
      nonempty_.fetch_and(~(1u << level), std::memory_order_release);
    }
    L.size.store(n - take, std::memory_order_relaxed);
  }
  if (take > 1) {
    // Reverse order so the owner's LIFO pops run them in FIFO order.
    std::size_t moved = 0;
    for (std::size_t i = take - 1; i >= 1; --i) {
      batch[i]->set_from_list();
      if (w->deque.push(batch[i])) [[likely]] {
        ++moved;
      } else {  // cannot happen (room reserved); if it did, the list takes the task back
        push_global_one(batch[i]);
      }
    }
    bump(w->local_in[static_cast<std::size_t>(level)], moved);
    w->local_level = level;
    ec_.notify_one();  // surplus: let a sleeping worker steal it
  }
  return batch[0];
}

TaskNode* PoolCore::steal(Worker* w) {
  std::size_t n = slot_high_.load(std::memory_order_acquire);
  if (n <= 1) return nullptr;
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  std::size_t start = static_cast<std::size_t>(w->rng % n);
  for (std::size_t k = 0; k < n; ++k) {
    Worker* v = slots_[(start + k) % n].load(std::memory_order_acquire);
    if (v == nullptr || v == w) continue;
    for (int attempt = 0; attempt < 4; ++attempt) {
      bool contended = false;
      if (TaskNode* t = v->deque.steal(contended)) {
        bump(w->local_out[static_cast<std::size_t>(t->level())]);
        return t;
      }
      if (!contended) break;
    }
  }
  return nullptr;
}

TaskNode* PoolCore::find_task(Worker* w, bool helping) {
  std::uint32_t bits = nonempty_.load(std::memory_order_acquire);
  if (bits != 0) {
    int top = 31 - std::countl_zero(bits);
    if (top > w->local_level) {
      if (TaskNode* t = pop_global(w, top)) return t;
    }
  }
  TaskNode* t = w->deque.pop();
  // Fairness: every kFairInterval-th look, a task pushed by a running task yields to older work
  // of its level: first the shared list, then the oldest task of this deque (its steal end).
  // Otherwise tasks that keep re-posting themselves into their workers' deques (LIFO) would
  // starve outside submissions forever, in the list or moved into a deque beneath them. Tasks
  // moved from the list (from_list) are older than anything still in it: they go on in FIFO
  // order. Not while helping: a waiting task helps with its newest work (its descendants).
  if (t != nullptr && !helping && ++w->looks % kFairInterval == 0 && !t->from_list()) {
    const int level = t->level();
    const bool listed = (nonempty_.load(std::memory_order_acquire) & (1u << level)) != 0;
    // Back where it was (the pop made room, so the push cannot fail); a thief may take it from here on.
    if ((listed || w->deque.size_approx() != 0) && w->deque.push(t)) {
      if (listed) {
        if (TaskNode* g = pop_global(w, level)) return g;
      }
      bool contended = false;
      t = w->deque.steal(contended);
      if (t == nullptr) t = w->deque.pop();
    }
  }
  if (t != nullptr) {
    bump(w->local_out[static_cast<std::size_t>(t->level())]);
    return t;
  }
  w->local_level = -1;
  while ((bits = nonempty_.load(std::memory_order_acquire)) != 0) {
    if (TaskNode* g = pop_global(w, 31 - std::countl_zero(bits))) return g;
  }
  return steal(w);
}

std::exception_ptr PoolCore::discard_reason() const noexcept {
  if (broken_.load(std::memory_order_acquire)) return broken_reason_;
  return nullptr;
}

void PoolCore::discard_popped(Worker* w, TaskNode* t) {
  t->discard(discard_reason());
  bump(w->cancelled);
}

void PoolCore::execute(Worker* w, TaskNode* t, RunContext& ctx) {
  release_capacity(1);
  if (phase_.load(std::memory_order_acquire) >= kCancelling) {
    discard_popped(w, t);
  } else {
    ctx.posted_error = nullptr;
    // in_task is lowered before `finished` is published (release), so a reader that saw the
    // pool idle also sees no task running.
    w->in_task.store(w->in_task.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    RunOutcome outcome = t->run(ctx);  // consumes t
    w->in_task.store(w->in_task.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    switch (outcome) {
      case RunOutcome::ok: bump(w->completed); break;
      case RunOutcome::failed: bump(w->failed); break;
      case RunOutcome::skipped: bump(w->cancelled); break;
    }
    if (ctx.posted_error) report_error(std::exchange(ctx.posted_error, nullptr));
  }
  bump(w->finished);
}

bool PoolCore::help_one(Worker* w) {
  if (tl_help_depth >= kMaxHelpDepth) return false;
  TaskNode* t = find_task(w, true);
  if (t == nullptr) return false;
  ++tl_help_depth;
  execute(w, t, *w->ctx);  // nested runs finish before the outer task sets posted_error
  --tl_help_depth;
  return true;
}

void PoolCore::drain_local_to_global(Worker* w) {
  std::size_t moved = 0;
  while (TaskNode* t = w->deque.pop()) {
    bump(w->local_out[static_cast<std::size_t>(t->level())]);
    t->set_next(nullptr);
    push_global_chain(t->level(), t, t, 1, false);
    ++moved;
  }
  w->local_level = -1;
  if (moved != 0) ec_.notify_all();
}

// Out of line: the fork/join path inlines its caller, and this branch is the rare one.
[[gnu::noinline]] void PoolCore::push_global_one(TaskNode* t) noexcept {
  t->set_next(nullptr);
  push_global_chain(t->level(), t, t, 1, false);
}

void PoolCore::push_global_chain(int level, TaskNode* head, TaskNode* tail, std::size_t n, bool count_submitted) {
  Level& L = levels_[static_cast<std::size_t>(level)];
  SpinGuard lk(L.mu);
  if (L.tail) {
    L.tail->set_next(head);
  } else {
    L.head = head;
    nonempty_.fetch_or(1u << level, std::memory_order_release);
  }
  L.tail = tail;
  L.size.store(L.size.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  if (count_submitted) L.pushed.store(L.pushed.load(std::memory_order_relaxed) + n, std::memory_order_release);
}

// Retires the calling idle worker if more than `floor` threads exist. On false, `found` may hold a
// task discovered by the final check, which the caller must run. Leaves the worker not searching.
bool PoolCore::try_retire(Worker* w, std::size_t floor, TaskNode*& found, bool& searching) {
  found = nullptr;
  std::size_t n = threads_.load(std::memory_order_seq_cst);
  do {
    if (n <= floor) return false;
  } while (!threads_.compare_exchange_weak(n, n - 1, std::memory_order_seq_cst));
  if (w->idle) idle_.fetch_sub(1, std::memory_order_seq_cst);
  // Final check, ordered against submitters by the event count (pool_core.hpp, "Thread count").
  const EventCount::Key key = searching ? ec_.search_to_wait() : ec_.prepare_wait();
  searching = false;
  found = find_task(w);
  ec_.cancel_wait();
  if (found == nullptr && key.ordered) return true;
  // Stay: a task was found, or the check was not ordered (the heavy barrier failed), so a
  // submitter may have counted on this worker; then try again after another idle_timeout.
  threads_.fetch_add(1, std::memory_order_seq_cst);
  if (w->idle) idle_.fetch_add(1, std::memory_order_seq_cst);
  ec_.notify_one();  // we may have taken the task a skipped notification meant for others
  if (!key.ordered) w->idle_since = std::chrono::steady_clock::now();
  return false;
}

void PoolCore::worker_main(Worker* w) {
  tl_worker = w;
  tl_help = &help_trampoline;
  tl_help_arg = w;
  try {  // cosmetic: no memory for the name must not end the thread
    std::string name = opts_.name + "-" + std::to_string(w->index);
    if (name.size() > 15) name = opts_.name.substr(0, 15 - std::to_string(w->index).size() - 1) + "-" + std::to_string(w->index);
    pthread_setname_np(pthread_self(), name.c_str());
  } catch (...) {
  }
  bool counted = true;     // still counted in threads_
  bool searching = false;  // counted as searching in ec_
  if (opts_.on_thread_start) {
    try {
      opts_.on_thread_start(w->index);
    } catch (...) {
      mark_broken(std::current_exception());
    }
  }
  RunContext ctx{stop_source_.get_token(), nullptr};
  w->ctx = &ctx;
  auto run = [&](TaskNode* t) {
    if (searching) {
      ec_.end_search();
      searching = false;
    }
    go_busy(w);
    execute(w, t, ctx);
    if (timer_hint_.load(std::memory_order_relaxed) != kNoTimer) fire_timers();
  };
  for (;;) {
    // Shrink: a worker above max hands its deque back and leaves between tasks.
    if (threads_.load(std::memory_order_relaxed) > max_threads_.load(std::memory_order_relaxed)) {
      drain_local_to_global(w);
      go_idle(w);
      TaskNode* found = nullptr;
      if (try_retire(w, max_threads_.load(), found, searching)) {
        counted = false;
        break;
      }
      if (found) {
        run(found);
        continue;
      }
      // Not retired (another worker did, or the final check could not be ordered): go on as an
      // idle worker; its next sleep is bounded, so the shrink is retried.
    }
    TaskNode* t = find_task(w);
    if (t == nullptr && !searching) {
      go_idle(w);
      // At most half the workers spin at once (as Go's scheduler does): more spinners only take
      // CPU from the threads producing the work.
      std::size_t limit = std::max<std::size_t>(1, threads_.load(std::memory_order_relaxed) / 2);
      if (ec_.searching() < limit) {
        ec_.begin_search();
        searching = true;
      }
    }
    // Spin a little: work often arrives within microseconds, and a futex round trip costs more.
    // Polls are plain loads of the queue fronts; find_task (RMWs, locks) runs only when one shows
    // work. A pause costs 25-140 ns depending on the CPU, so a few per poll keep the reaction to
    // a submission near a tenth of a microsecond without stealing the producers' cache lines.
    // In the second half of the spin the spinner yields every few polls: on an oversubscribed
    // machine (workers plus outside producers > cores) a producer then runs at once instead of
    // waiting for the scheduler to preempt the spinner. (Yielding from the start put the spinner
    // behind threads going to sleep: ping_pong p99 0.6 -> 21 us.)
    for (int i = 0; t == nullptr && searching && i < kSpinPolls && !stopping_.load(std::memory_order_relaxed); ++i) {
      for (int k = 0; k < kPausesPerPoll; ++k) cpu_relax();
      if (has_queued_work()) {
        t = find_task(w);
      } else if (i >= kSpinPolls / 2 && i % kYieldEvery == kYieldEvery - 1) {
        std::this_thread::yield();
      }
    }
    if (t != nullptr) {
      run(t);
      continue;
    }
    if (stopping_.load(std::memory_order_acquire)) break;
    // Park.
    auto key = searching ? ec_.search_to_wait() : ec_.prepare_wait();
    searching = false;
    t = find_task(w);
    if (t != nullptr || stopping_.load(std::memory_order_acquire) ||
        threads_.load(std::memory_order_relaxed) > max_threads_.load(std::memory_order_relaxed)) {
      ec_.cancel_wait();
      if (t != nullptr) {
        ec_.notify_one();  // a skipped notification may have counted on us
        run(t);
      }
      continue;
    }
    std::optional<std::chrono::nanoseconds> timeout;
    const bool elastic = threads_.load(std::memory_order_relaxed) > min_threads_.load(std::memory_order_relaxed);
    if (elastic) timeout = opts_.idle_timeout - (std::chrono::steady_clock::now() - w->idle_since);
    bool woke;
    if (!timeout || *timeout > std::chrono::nanoseconds::zero()) {
      woke = ec_.wait(key, timeout);  // returns as a searcher
    } else {
      ec_.cancel_wait();
      ec_.begin_search();
      woke = false;
    }
    searching = true;
    if (!woke && elastic) {
      TaskNode* found = nullptr;
      if (try_retire(w, min_threads_.load(), found, searching)) {
        counted = false;
        break;
      }
      if (found) run(found);
    }
  }
  if (searching) ec_.end_search();
  if (counted) {
    threads_.fetch_sub(1, std::memory_order_seq_cst);
    if (w->idle) idle_.fetch_sub(1, std::memory_order_seq_cst);
  }
  if (opts_.on_thread_stop) {
    try {
      opts_.on_thread_stop(w->index);
    } catch (...) {
      report_orphan_exception("on_thread_stop", std::current_exception());
    }
  }
  tl_worker = nullptr;
  tl_help = nullptr;
  w->ctx = nullptr;
  w->live.store(false, std::memory_order_release);
}

// ---- idle, shutdown, resize -------------------------------------------------------------------

bool PoolCore::is_idle() const noexcept {
  std::size_t high = slot_high_.load(std::memory_order_seq_cst);
  std::uint64_t fin = ext_finished_.load(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < high; ++i)
    if (Worker* w = slots_[i].load(std::memory_order_acquire)) fin += w->finished.load(std::memory_order_seq_cst);
  std::uint64_t sub = 0;
  for (const Level& L : levels_) sub += L.pushed.load(std::memory_order_seq_cst);
  high = slot_high_.load(std::memory_order_seq_cst);
  for (std::size_t i = 0; i < high; ++i)
    if (Worker* w = slots_[i].load(std::memory_order_acquire)) sub += w->internal_submitted.load(std::memory_order_seq_cst);
  return fin == sub;
}

bool PoolCore::wait_idle_until(std::chrono::steady_clock::time_point deadline, bool from_shutdown) {
  if (!from_shutdown && on_own_worker())
    throw std::logic_error("taskpool: wait_idle() from a task of the same pool would wait for itself");
  for (;;) {
    if (is_idle()) return true;
    idle_waiters_.fetch_add(1, std::memory_order_seq_cst);
    std::uint32_t e = idle_epoch_.load(std::memory_order_seq_cst);
    if (is_idle()) {
      idle_waiters_.fetch_sub(1, std::memory_order_seq_cst);
      return true;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      idle_waiters_.fetch_sub(1, std::memory_order_seq_cst);
      return false;
    }
    std::optional<std::chrono::nanoseconds> timeout;
    if (deadline != std::chrono::steady_clock::time_point::max()) timeout = deadline - now;
    futex_wait(&idle_epoch_, e, timeout);
    idle_waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }
}

void PoolCore::sweep_global(std::exception_ptr why) {
  std::uint64_t n = 0;
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    TaskNode* head;
    {
      SpinGuard lk(levels_[l].mu);
      head = std::exchange(levels_[l].head, nullptr);
      levels_[l].tail = nullptr;
      levels_[l].size.store(0, std::memory_order_relaxed);
      nonempty_.fetch_and(~(1u << l), std::memory_order_release);
    }
    while (head != nullptr) {
      TaskNode* next = head->next();
      head->discard(why);
      head = next;
      ++n;
    }
  }
  if (n == 0) return;
  release_capacity(n);
  ext_cancelled_.fetch_add(n, std::memory_order_relaxed);
  ext_finished_.fetch_add(n, std::memory_order_seq_cst);
  if (idle_waiters_.load(std::memory_order_seq_cst) != 0) notify_idle_waiters();
}

void PoolCore::mark_broken(std::exception_ptr cause) {
  {
    MutexLock lk(broken_mu_);
    if (broken_.load()) return;
    broken_cause_ = std::move(cause);
    try {
      broken_reason_ = std::make_exception_ptr(BrokenPool(broken_cause_));
    } catch (...) {
      broken_reason_ = nullptr;  // no memory: discarded futures are cancelled instead
    }
    broken_.store(true, std::memory_order_release);
  }
  int p = phase_.load();
  while (p < kBroken && !phase_.compare_exchange_weak(p, kBroken)) {
  }
  sweep_global(discard_reason());
  {
    MutexLock lk(space_mu_);
    space_cv_.notify_all();
  }
  ec_.notify_all();
}

void PoolCore::shutdown(Shutdown how) {
  if (on_own_worker()) throw std::logic_error("taskpool: shutdown from a task of the same pool would join itself");
  MutexLock g(shutdown_mu_);
  if (shut_down_) return;
  // Close hooks first (a Scheduler cancels its pending timers), outside hooks_mu_.
  std::vector<std::pair<std::size_t, std::function<void()>>> hooks;
  {
    MutexLock lk(hooks_mu_);
    hooks_fired_ = true;
    hooks.swap(close_hooks_);
  }
  for (auto& h : hooks) h.second();
  close_lists();
  int target = how == Shutdown::drain ? kDraining : kCancelling;
  int p = phase_.load();
  while (p < target && !phase_.compare_exchange_weak(p, target)) {
  }
  if (how == Shutdown::terminate) stop_source_.request_stop();
  {
    MutexLock lk(space_mu_);
    space_cv_.notify_all();
  }
  if (how != Shutdown::drain) sweep_global(discard_reason());
  ec_.notify_all();
  // Waiting is enough even with no live worker: a task is queued only with a worker that will
  // see it, or by a submitter still inside enqueue that starts one or runs the work itself
  // (spawn_for_work). So a task whose submit() returned is run, never cancelled, by close().
  wait_idle_until(std::chrono::steady_clock::time_point::max(), true);
  stop_workers();
  sweep_global(nullptr);
  shut_down_ = true;
}

// With every list lock held, so a submission that appended under its lock is ordered before the
// close and one that looks after it sees closed_ (and queues nothing). The analysis cannot follow
// locks taken in a loop over an array; the loop below releases exactly what it took.
void PoolCore::close_lists() noexcept TP_NO_THREAD_SAFETY_ANALYSIS {
  for (Level& L : levels_) L.mu.lock();
  closed_.store(true, std::memory_order_release);
  for (Level& L : levels_) L.mu.unlock();
}

void PoolCore::stop_workers() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  ec_.notify_all();
  MutexLock lk(threads_mu_);  // after stopping_: no thread starts from here on
  for (auto& w : owned_)
    if (w && w->thread.joinable()) w->thread.join();
}

void PoolCore::fire_timers() noexcept {
  auto now = std::chrono::steady_clock::now();
  if (now.time_since_epoch().count() < timer_hint_.load(std::memory_order_relaxed)) return;
  if (!due_mu_.try_lock()) return;  // another worker is firing them
  timer_hint_.store(kNoTimer, std::memory_order_seq_cst);
  // Launched as from outside the pool: into the shared lists, which every worker checks (the
  // fairness rule in find_task), not under this worker's own next task in its deque.
  Worker* self = std::exchange(tl_worker, nullptr);
  for (DueSource* s : due_sources_) note_due(s->fire_due(now));  // noexcept
  tl_worker = self;
  due_mu_.unlock();
}

void PoolCore::note_due(std::chrono::steady_clock::time_point t) noexcept {
  const std::int64_t v = t.time_since_epoch().count();
  std::int64_t cur = timer_hint_.load(std::memory_order_relaxed);
  while (v < cur && !timer_hint_.compare_exchange_weak(cur, v, std::memory_order_seq_cst)) {
  }
}

void PoolCore::add_due_source(DueSource* s) {
  MutexLock lk(due_mu_);
  due_sources_.push_back(s);
}

void PoolCore::remove_due_source(DueSource* s) {
  MutexLock lk(due_mu_);
  std::erase(due_sources_, s);
}

std::size_t PoolCore::add_close_hook(std::function<void()> hook) {
  {
    MutexLock lk(hooks_mu_);
    if (!hooks_fired_) {
      close_hooks_.emplace_back(next_hook_id_, std::move(hook));
      return next_hook_id_++;
    }
  }
  hook();
  return 0;
}

void PoolCore::remove_close_hook(std::size_t id) {
  MutexLock lk(hooks_mu_);
  std::erase_if(close_hooks_, [&](auto& h) { return h.first == id; });
}

void PoolCore::resize(std::size_t min_threads, std::size_t max_threads) {
  if (max_threads == 0) throw std::invalid_argument("taskpool: resize: max_threads must be at least 1");
  if (min_threads > max_threads)
    throw std::invalid_argument("taskpool: resize: min_threads (" + std::to_string(min_threads) +
                                ") exceeds max_threads (" + std::to_string(max_threads) + ")");
  if (max_threads > kMaxWorkers)
    throw std::invalid_argument("taskpool: resize: max_threads " + std::to_string(max_threads) + " exceeds " +
                                std::to_string(kMaxWorkers));
  if (closed_.load()) throw PoolClosed();
  run_test_hook(HookPoint::resize_unlocked);
  MutexLock lk(threads_mu_);
  // Again under the lock: close() may have run to the end since the check above (and
  // spawn_one_locked refuses to start threads once shutdown is joining them).
  if (closed_.load()) throw PoolClosed();
  min_threads_.store(min_threads, std::memory_order_seq_cst);
  max_threads_.store(max_threads, std::memory_order_seq_cst);
  // Every sleeper re-decides under the new bounds: above max it leaves; above min it sleeps with
  // idle_timeout (one at the old minimum slept without a timeout). The notification's RMW orders
  // the stores above before the sleepers' next look at the bounds (event_count.hpp).
  ec_.notify_all();
  std::exception_ptr failed;
  bool stranded = false;
  while (!failed && threads_.load() < min_threads) {
    Spawn r = spawn_one_locked();
    if (r == Spawn::failed) {
      failed = spawn_error_;
      stranded = spawn_failed_locked();
    }
    if (r == Spawn::refused) break;  // every slot still held by an exiting thread
  }
  // Grow toward max while work waits and nobody is idle to take it.
  std::size_t queued = 0;
  for (const Level& L : levels_) queued += L.size.load(std::memory_order_relaxed);
  while (!failed && queued > 0 && idle_.load() == 0 && threads_.load() < max_threads) {
    Spawn r = spawn_one_locked();
    if (r == Spawn::failed) stranded = spawn_failed_locked();
    if (r != Spawn::started) break;
    --queued;
  }
  lk.unlock();
  if (stranded) run_stranded();  // see there: a submitter may have trusted our failed start
  if (failed) throw ThreadStartFailed(failed);  // the new bounds stay; threads start on demand
}

Stats PoolCore::stats() const {
  Stats s;
  s.threads = threads_.load(std::memory_order_relaxed);
  s.idle_threads = std::min(idle_.load(std::memory_order_relaxed), s.threads);
  std::array<std::int64_t, kPriorityLevels> q{};
  for (std::size_t l = 0; l < levels_.size(); ++l) {
    q[l] = static_cast<std::int64_t>(levels_[l].size.load(std::memory_order_relaxed));
    s.submitted += levels_[l].pushed.load(std::memory_order_relaxed);
  }
  std::size_t high = slot_high_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < high; ++i) {
    Worker* w = slots_[i].load(std::memory_order_acquire);
    if (w == nullptr) continue;
    s.submitted += w->internal_submitted.load(std::memory_order_relaxed);
    s.completed += w->completed.load(std::memory_order_relaxed);
    s.failed += w->failed.load(std::memory_order_relaxed);
    s.cancelled += w->cancelled.load(std::memory_order_relaxed);
    s.running += static_cast<std::size_t>(w->in_task.load(std::memory_order_acquire));
    for (std::size_t l = 0; l < q.size(); ++l)
      q[l] += static_cast<std::int64_t>(w->local_in[l].load(std::memory_order_relaxed)) -
              static_cast<std::int64_t>(w->local_out[l].load(std::memory_order_relaxed));
  }
  for (std::size_t l = 0; l < q.size(); ++l) {
    s.queued_by_priority[l] = q[l] > 0 ? static_cast<std::size_t>(q[l]) : 0;
    s.queued += s.queued_by_priority[l];
  }
  std::uint64_t inl = ext_inline_.load(std::memory_order_relaxed), inl_failed = ext_inline_failed_.load(std::memory_order_relaxed);
  s.submitted += inl;
  s.completed += inl - inl_failed;
  s.failed += inl_failed;
  s.completed += ext_ran_.load(std::memory_order_relaxed);
  s.failed += ext_ran_failed_.load(std::memory_order_relaxed);
  s.cancelled += ext_cancelled_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.blocked_submitters = space_waiters_.load(std::memory_order_relaxed);
  s.min_threads = min_threads_.load(std::memory_order_relaxed);
  s.max_threads = max_threads_.load(std::memory_order_relaxed);
  s.closed = closed();
  s.broken = broken();
  return s;
}

void PoolCore::report_error(std::exception_ptr e) noexcept {
  if (opts_.on_error) {
    try {
      opts_.on_error(e);
      return;
    } catch (...) {
      report_orphan_exception("Options::on_error", std::current_exception());
      return;
    }
  }
  report_orphan_exception("a posted task", e);
}

}  // namespace detail

// ---- ThreadPool -------------------------------------------------------------------------------

ThreadPool::ThreadPool() : ThreadPool(Options{}) {}
ThreadPool::ThreadPool(Options options) : core_(std::make_unique<detail::PoolCore>(this, std::move(options))) {}
ThreadPool::ThreadPool(std::size_t threads) {
  if (threads == 0) throw std::invalid_argument("taskpool: a fixed pool needs at least one thread");
  Options o;
  o.min_threads = o.max_threads = threads;
  core_ = std::make_unique<detail::PoolCore>(this, std::move(o));
}
ThreadPool::~ThreadPool() {
  if (core_) core_->shutdown(Shutdown::drain);
}

detail::EnqueueStatus ThreadPool::enqueue(detail::TaskNode* node, detail::Admission a, clock::time_point deadline) {
  return core_->enqueue(node, a, deadline);
}
detail::EnqueueStatus ThreadPool::enqueue_batch(detail::TaskNode** nodes, std::size_t n, detail::Admission a,
                                                clock::time_point deadline) {
  return core_->enqueue_batch(nodes, n, a, deadline);
}
void ThreadPool::wait_idle() { core_->wait_idle_until(clock::time_point::max()); }
bool ThreadPool::wait_idle_until(clock::time_point deadline) { return core_->wait_idle_until(deadline); }
void ThreadPool::shutdown(Shutdown how) { core_->shutdown(how); }
void ThreadPool::resize(std::size_t min_threads, std::size_t max_threads) { core_->resize(min_threads, max_threads); }
Stats ThreadPool::stats() const { return core_->stats(); }
bool ThreadPool::closed() const noexcept { return core_->closed(); }
std::size_t ThreadPool::max_threads_now() const noexcept { return core_->max_threads(); }
void ThreadPool::throw_closed() const { core_->throw_closed_or_broken(); }
bool ThreadPool::broken() const noexcept { return core_->broken(); }
ThreadPool* ThreadPool::current() noexcept {
  return detail::tl_worker ? detail::tl_worker->pool->owner() : nullptr;
}
int ThreadPool::current_worker_index() noexcept {
  return detail::tl_worker ? static_cast<int>(detail::tl_worker->index) : -1;
}

// ---- PoolAccess (taskpool/detail/pool_access.hpp) ---------------------------------------------

namespace detail {
void PoolAccess::enqueue_overflow(ThreadPool& pool, TaskNode* node) {
  pool.core_->enqueue(node, Admission::overflow, {});
}
std::size_t PoolAccess::add_close_hook(ThreadPool& pool, std::function<void()> hook) {
  return pool.core_->add_close_hook(std::move(hook));
}
void PoolAccess::remove_close_hook(ThreadPool& pool, std::size_t id) { pool.core_->remove_close_hook(id); }
void PoolAccess::add_due_source(ThreadPool& pool, DueSource* s) { pool.core_->add_due_source(s); }
void PoolAccess::remove_due_source(ThreadPool& pool, DueSource* s) { pool.core_->remove_due_source(s); }
void PoolAccess::note_due(ThreadPool& pool, std::chrono::steady_clock::time_point t) noexcept { pool.core_->note_due(t); }
int PoolAccess::wakeup_protocol(const ThreadPool& pool) noexcept { return pool.core_->wakeup_protocol(); }
std::size_t PoolAccess::sleeping_workers(const ThreadPool& pool) noexcept { return pool.core_->sleeping_workers(); }
std::size_t PoolAccess::idle_waiters(const ThreadPool& pool) noexcept { return pool.core_->idle_waiters(); }
}  // namespace detail

}  // namespace taskpool
