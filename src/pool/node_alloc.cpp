// src/pool/node_alloc.cpp — task-node memory: slabs in one reserved region, per-thread caches
// and a shared depot of batches: the out-of-line half of taskpool/detail/node_alloc.hpp, whose
// design note describes the scheme.
//
// Details kept here. The region is kRegionBytes of address space reserved once per process
// (MAP_NORESERVE: pages are committed only as slabs are carved). The depot keeps at most
// kMaxDepot batches of malloc'd blocks per class; beyond that they go back to malloc. Region
// blocks always stay in the depot: node memory up to kRegionBytes is kept for reuse for the life
// of the process (a burst of a million queued 32-byte tasks keeps 32 MB), which is what lets
// queued tasks cost only their own size. A block is a region block (address inside the region)
// or came from ::operator new(block_size(c)) and goes back there. The depot's lists are guarded
// by one SpinLock per class (a few pointer writes per kBatch tasks).
#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>

#include "pool/spin_lock.hpp"
#include "taskpool/detail/node_alloc.hpp"

namespace taskpool::detail {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheEnabled = false;
#else
constexpr bool kCacheEnabled = true;
#endif
constexpr std::size_t kGranule = NodeCache::kGranule, kClasses = NodeCache::kClasses, kBatch = NodeCache::kBatch;
constexpr std::size_t kMaxDepot = 256;
constexpr std::size_t kSlabBytes = std::size_t{64} << 10;
constexpr std::size_t kRegionBytes = std::size_t{256} << 20;

// A block on a list: Block::next links a list or batch (the inline paths in node_alloc.hpp
// use the same member); next_batch links the batches in the depot (first block of each only).
struct FreeBlock : NodeCache::Block {
  FreeBlock* next_batch;
};
FreeBlock* as_free(NodeCache::Block* b) { return static_cast<FreeBlock*>(b); }

constexpr std::size_t block_size(std::size_t c) { return (c + 1) * kGranule; }
constexpr std::size_t kMaxSize = NodeCache::kMaxSize;
constexpr auto class_of = NodeCache::class_of;
static_assert(block_size(kClasses - 1) == kMaxSize && sizeof(FreeBlock) <= kGranule);
static_assert(class_of(1) == 0 && class_of(16) == 0 && class_of(17) == 1 && class_of(32) == 1 &&
              class_of(kMaxSize) == kClasses - 1);

// The region: [base, base + kRegionBytes), slabs handed out by bumping `used`.
class Region {
 public:
  Region() noexcept {
    void* p = ::mmap(nullptr, kRegionBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) base_ = reinterpret_cast<std::uintptr_t>(p);
  }
  bool contains(const void* p) const noexcept {
    return base_ != 0 && reinterpret_cast<std::uintptr_t>(p) - base_ < kRegionBytes;
  }
  // A fresh slab, or nullptr when the region is used up (or was never reserved).
  char* slab() noexcept {
    if (base_ == 0 || used_.load(std::memory_order_relaxed) >= kRegionBytes) return nullptr;
    std::size_t off = used_.fetch_add(kSlabBytes, std::memory_order_relaxed);
    if (off >= kRegionBytes) return nullptr;
    return reinterpret_cast<char*>(base_ + off);
  }

 private:
  std::uintptr_t base_ = 0;  // written once, before any block exists
  std::atomic<std::size_t> used_{0};
};

// Never destroyed: threads may still free nodes while static destructors run.
Region& region() {
  static Region* r = new Region;
  return *r;
}

class Depot {
 public:
  // Takes a chain of blocks (a whole batch, or a thread's leftovers); false when the depot is
  // full and the chain may go to malloc (never for region blocks: `keep`).
  bool put(std::size_t c, FreeBlock* chain, bool keep) noexcept {
    Class& k = classes_[c];
    SpinGuard lk(k.mu);
    if (!keep && k.count.load(std::memory_order_relaxed) >= kMaxDepot) return false;
    chain->next_batch = k.head;
    k.head = chain;
    k.count.store(k.count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }
  FreeBlock* take(std::size_t c) noexcept {
    Class& k = classes_[c];
    // Peek without the lock: a stale zero only costs a carve or a malloc.
    if (k.count.load(std::memory_order_relaxed) == 0) return nullptr;
    SpinGuard lk(k.mu);
    FreeBlock* b = k.head;
    if (b != nullptr) {
      k.head = b->next_batch;
      k.count.store(k.count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    }
    return b;
  }

 private:
  struct Class {
    SpinLock mu;
    FreeBlock* head TP_GUARDED_BY(mu) = nullptr;  // batches linked by next_batch
    std::atomic<std::size_t> count{0};            // written under mu; peeked without it
  };
  Class classes_[kClasses];
};

Depot& depot() {
  static Depot* d = new Depot;
  return *d;
}

// Gives a chain back for good: region blocks to the depot (kept), the others to malloc.
void release_chain(FreeBlock* b, std::size_t c) noexcept {
  FreeBlock* keep = nullptr;
  while (b != nullptr) {
    FreeBlock* next = as_free(b->next);
    if (region().contains(b)) {
      b->next = keep;
      keep = b;
    } else {
      ::operator delete(static_cast<void*>(b), block_size(c));
    }
    b = next;
  }
  if (keep != nullptr) depot().put(c, keep, true);
}

struct CacheReaper {
  ~CacheReaper() {
    NodeCache& k = tl_node_cache;
    k.closed = true;
    k.active = false;
    for (std::size_t c = 0; c < kClasses; ++c) {
      release_chain(as_free(k.alloc[c]), c);
      release_chain(as_free(k.freed[c]), c);
      // The uncarved rest of the slab becomes a chain too, so no region memory is stranded.
      FreeBlock* rest = nullptr;
      for (char* p = k.slab_cur[c]; p != nullptr && p + block_size(c) <= k.slab_end[c]; p += block_size(c)) {
        auto* b = reinterpret_cast<FreeBlock*>(p);
        b->next = rest;
        rest = b;
      }
      if (rest != nullptr) depot().put(c, rest, true);
      k.alloc[c] = k.freed[c] = nullptr;
      k.slab_cur[c] = k.slab_end[c] = nullptr;
      k.freed_count[c] = 0;
    }
  }
};
thread_local CacheReaper tl_reaper;

// Caching starts on a thread's first slow-path call; the reaper's first use registers its
// destructor for this thread.
void activate(NodeCache& k) noexcept {
  if (!k.active && !k.closed) {
    k.active = true;
    static_cast<void>(&tl_reaper);
  }
}

void* carve(NodeCache& k, std::size_t c) noexcept {
  const std::size_t size = block_size(c);
  if (k.slab_cur[c] == nullptr || k.slab_cur[c] + size > k.slab_end[c]) {
    char* s = region().slab();
    if (s == nullptr) return nullptr;
    k.slab_cur[c] = s;
    k.slab_end[c] = s + kSlabBytes;
  }
  void* p = k.slab_cur[c];
  k.slab_cur[c] += size;
  return p;
}

}  // namespace

__thread NodeCache tl_node_cache;

void* node_alloc_slow(std::size_t n) {
  if (!kCacheEnabled || n > kMaxSize) return ::operator new(n);
  const std::size_t c = class_of(n);
  NodeCache& k = tl_node_cache;
  if (k.closed) return ::operator new(block_size(c));  // the lists are gone for this thread
  activate(k);
  // Usually the inline path found the alloc list empty (a caller built without the inline path
  // comes here first): take our own free list, else a batch from the depot, else carve the slab,
  // else malloc.
  NodeCache::Block* b = k.alloc[c];
  if (b == nullptr) {
    if ((b = k.freed[c]) != nullptr) {
      k.freed[c] = nullptr;
      k.freed_count[c] = 0;
    } else if ((b = depot().take(c)) == nullptr) {
      if (void* p = carve(k, c)) return p;
      return ::operator new(block_size(c));
    }
  }
  k.alloc[c] = b->next;
  return b;
}

void node_free_slow(void* p, std::size_t n) noexcept {
  if (!kCacheEnabled || n > kMaxSize) {
    ::operator delete(p, n);
    return;
  }
  const std::size_t c = class_of(n);
  NodeCache& k = tl_node_cache;
  auto* b = static_cast<FreeBlock*>(p);
  if (k.closed) {
    b->next = nullptr;
    release_chain(b, c);
    return;
  }
  activate(k);
  auto* nb = static_cast<NodeCache::Block*>(p);
  nb->next = k.freed[c];
  k.freed[c] = nb;
  if (++k.freed_count[c] < kBatch) return;
  // A full batch: keep it for our own allocations if we have none, else hand it to the depot.
  FreeBlock* batch = as_free(k.freed[c]);
  k.freed[c] = nullptr;
  k.freed_count[c] = 0;
  if (k.alloc[c] == nullptr) {
    k.alloc[c] = batch;
  } else if (!depot().put(c, batch, false)) {
    release_chain(batch, c);
  }
}

}  // namespace taskpool::detail
