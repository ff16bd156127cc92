// src/pool/node_alloc.cpp — per-thread caches of task-node memory (see TaskNode::operator new).
//
// Design note. Fork/join work allocates a node per spawned task and, most of the time, frees it
// on the same thread soon after (the parent drops the child's future). A thread-local free list
// per 16-byte size class (up to 256 bytes) turns that malloc/free pair into two pointer moves.
// Invariants: every cached block of class c came from ::operator new((c + 1) * 16) and returns
// there; a list holds at most kMaxCached blocks, the surplus goes back to malloc at once, so a
// thread that only frees (the consumer of another thread's posts) holds a bounded amount. No
// block is ever shared between caches, so there is nothing to synchronize: a node crosses threads
// only through the pool's queues, which order its use before its free. At thread exit the caches
// are returned to malloc (CacheReaper) and later frees on that thread bypass them. Under
// AddressSanitizer the caches are off, so use-after-free of a node is still caught.
#include <cstddef>
#include <cstdint>
#include <new>

#include "taskpool/thread_pool.hpp"

namespace taskpool::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheEnabled = false;
#else
constexpr bool kCacheEnabled = true;
#endif
constexpr std::size_t kGranule = 16, kClasses = 16, kMaxCached = 128;

struct FreeBlock {
  FreeBlock* next;
};

// Trivially destructible, so it stays usable for the whole life of the thread.
struct Cache {
  FreeBlock* head[kClasses];
  std::uint32_t count[kClasses];
  bool reaper_armed;
  bool closed;  // the thread is exiting: no more caching
};
thread_local Cache tl_cache{};

struct CacheReaper {
  ~CacheReaper() {
    Cache& k = tl_cache;
    k.closed = true;
    for (std::size_t c = 0; c < kClasses; ++c) {
      while (FreeBlock* b = k.head[c]) {
        k.head[c] = b->next;
        ::operator delete(static_cast<void*>(b), (c + 1) * kGranule);
      }
      k.count[c] = 0;
    }
  }
};
thread_local CacheReaper tl_reaper;

}  // namespace

void* node_alloc(std::size_t n) {
  if (!kCacheEnabled || n > kGranule * kClasses) return ::operator new(n);
  const std::size_t c = (n - 1) / kGranule;
  Cache& k = tl_cache;
  if (FreeBlock* b = k.head[c]) {
    k.head[c] = b->next;
    --k.count[c];
    return b;
  }
  return ::operator new((c + 1) * kGranule);
}

void node_free(void* p, std::size_t n) noexcept {
  if (!kCacheEnabled || n > kGranule * kClasses) {
    ::operator delete(p, n);
    return;
  }
  const std::size_t c = (n - 1) / kGranule;
  Cache& k = tl_cache;
  if (k.count[c] >= kMaxCached || k.closed) {
    ::operator delete(p, (c + 1) * kGranule);
    return;
  }
  if (!k.reaper_armed) {
    k.reaper_armed = true;
    static_cast<void>(&tl_reaper);  // first use registers its destructor for this thread
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = k.head[c];
  k.head[c] = b;
  ++k.count[c];
}

}  // namespace taskpool::detail
