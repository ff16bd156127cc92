// src/pool/node_alloc.cpp — task-node memory: per-thread caches plus a shared depot of batches.
//
// Design note. Every task is one heap node, and most are freed on another thread than the one
// that allocated them (a producer posts, a worker runs and frees; a parent spawns, a thief runs).
// Cross-thread malloc/free costs 40-50 ns a pair here, as much as the rest of a task. So nodes of
// up to 264 bytes are recycled by size class - 24, 40, 56, ... bytes: 16 apart and 8 short of a
// multiple of 16, the sizes glibc's malloc serves without slack (its chunk header is 8 bytes):
//  - Each thread has, per class, an alloc list (allocations pop it) and a free list (frees push
//    it). Neither is shared, so the hot path is two pointer moves and no atomic operation.
//  - When a free list reaches kBatch blocks it becomes the alloc list if that is empty, or else
//    goes whole, as one batch, to the depot. An allocation that finds its alloc list empty takes
//    its own free list, else one batch from the depot, else malloc. So a producer/consumer pair
//    moves blocks back to the producer kBatch at a time, one lock per kBatch tasks.
//  - The depot (one lock per class) keeps at most kMaxDepot batches; beyond, blocks go to malloc.
//    A thread holds at most 2 * kBatch blocks per class.
// Invariants: a block of class c always came from ::operator new(block_size(c)) and goes back
// there; a block is on at most one list; lists are touched only by their thread or under the
// depot lock. A node crosses threads only through the pool's queues, which order its last use
// before its free. At thread exit the thread's lists go back to malloc, and later frees on that
// thread bypass the cache. Under AddressSanitizer all of this is off, so use-after-free of a
// node is still caught.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "pool/spin_lock.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheEnabled = false;
#else
constexpr bool kCacheEnabled = true;
#endif
constexpr std::size_t kGranule = 16, kClasses = 16, kBatch = 64, kMaxDepot = 256;

struct FreeBlock {
  FreeBlock* next;        // within a list or batch
  FreeBlock* next_batch;  // in the depot: the next batch (first block of each batch only)
};

constexpr std::size_t block_size(std::size_t c) { return (c + 1) * kGranule + 8; }
constexpr std::size_t kMaxSize = block_size(kClasses - 1);
constexpr std::size_t class_of(std::size_t n) { return n <= block_size(0) ? 0 : (n - block_size(0) + kGranule - 1) / kGranule; }
static_assert(class_of(24) == 0 && class_of(25) == 1 && class_of(40) == 1 && class_of(41) == 2 && class_of(kMaxSize) == kClasses - 1);

void free_list_to_malloc(FreeBlock* b, std::size_t c) noexcept {
  while (b != nullptr) {
    FreeBlock* next = b->next;
    ::operator delete(static_cast<void*>(b), block_size(c));
    b = next;
  }
}

class Depot {
 public:
  // Takes a whole batch of kBatch blocks; false when full (the caller frees them).
  bool put(std::size_t c, FreeBlock* batch) noexcept {
    std::lock_guard lk(mu_[c]);
    if (count_[c].load(std::memory_order_relaxed) >= kMaxDepot) return false;
    batch->next_batch = head_[c];
    head_[c] = batch;
    count_[c].store(count_[c].load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }
  FreeBlock* take(std::size_t c) noexcept {
    // Peek without the lock: a stale zero only costs one malloc.
    if (count_[c].load(std::memory_order_relaxed) == 0) return nullptr;
    std::lock_guard lk(mu_[c]);
    FreeBlock* b = head_[c];
    if (b != nullptr) {
      head_[c] = b->next_batch;
      count_[c].store(count_[c].load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }
    return b;
  }

 private:
  SpinLock mu_[kClasses];
  FreeBlock* head_[kClasses] = {};                  // guarded by mu_[c]
  std::atomic<std::size_t> count_[kClasses] = {};  // written under mu_[c]; peeked without it
};

// Never destroyed: threads may still free nodes while static destructors run.
Depot& depot() {
  static Depot* d = new Depot;
  return *d;
}

// Trivially destructible, so it stays usable for the whole life of the thread.
struct Cache {
  FreeBlock* alloc[kClasses];
  FreeBlock* freed[kClasses];
  std::uint32_t freed_count[kClasses];
  bool reaper_armed;
  bool closed;  // the thread is exiting: no more caching
};
thread_local Cache tl_cache{};

struct CacheReaper {
  ~CacheReaper() {
    Cache& k = tl_cache;
    k.closed = true;
    for (std::size_t c = 0; c < kClasses; ++c) {
      free_list_to_malloc(k.alloc[c], c);
      free_list_to_malloc(k.freed[c], c);
      k.alloc[c] = k.freed[c] = nullptr;
      k.freed_count[c] = 0;
    }
  }
};
thread_local CacheReaper tl_reaper;

}  // namespace

void* node_alloc(std::size_t n) {
  if (!kCacheEnabled || n > kMaxSize) return ::operator new(n);
  const std::size_t c = class_of(n);
  Cache& k = tl_cache;
  FreeBlock* b = k.alloc[c];
  if (b == nullptr) {
    if (k.freed[c] != nullptr) {
      b = k.freed[c];
      k.freed[c] = nullptr;
      k.freed_count[c] = 0;
    } else {
      b = depot().take(c);
      if (b == nullptr) return ::operator new(block_size(c));
    }
  }
  k.alloc[c] = b->next;
  return b;
}

void node_free(void* p, std::size_t n) noexcept {
  if (!kCacheEnabled || n > kMaxSize) {
    ::operator delete(p, n);
    return;
  }
  const std::size_t c = class_of(n);
  Cache& k = tl_cache;
  if (k.closed) {
    ::operator delete(p, block_size(c));
    return;
  }
  if (!k.reaper_armed) {
    k.reaper_armed = true;
    static_cast<void>(&tl_reaper);  // first use registers its destructor for this thread
  }
  auto* b = static_cast<FreeBlock*>(p);
  b->next = k.freed[c];
  k.freed[c] = b;
  if (++k.freed_count[c] < kBatch) return;
  // A full batch: keep it for our own allocations if we have none, else hand it to the depot.
  FreeBlock* batch = k.freed[c];
  k.freed[c] = nullptr;
  k.freed_count[c] = 0;
  if (k.alloc[c] == nullptr) {
    k.alloc[c] = batch;
  } else if (!depot().put(c, batch)) {
    free_list_to_malloc(batch, c);
  }
}

}  // namespace taskpool::detail
