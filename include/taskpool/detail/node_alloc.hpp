// taskpool/detail/node_alloc.hpp — task-node memory: the inline fast paths of the per-thread
// node cache (the rest is src/pool/node_alloc.cpp). Not part of the API.
//
// Design note. Every task is one heap node, and most are freed on another thread than the one
// that allocated them (a producer posts, a worker runs and frees; a parent spawns, a thief runs).
// Cross-thread malloc/free costs 40-50 ns a pair, as much as the rest of a task, and malloc adds
// an 8-byte header and rounds to 16. So nodes of up to kMaxSize bytes are recycled by size class
// (16, 32, ..., 256 bytes):
//  - Blocks are carved from 64 KiB slabs of one region of address space reserved once per
//    process, with no per-block header; when the region is used up (or could not be reserved),
//    blocks come from malloc.
//  - Each thread has, per class, an alloc list (allocations pop it), a free list (frees push it)
//    and the rest of its current slab. Nothing here is shared, so the hot path below - pop the
//    alloc list, push the free list - is a few instructions at the call site with no atomic
//    operation. Sizes are compile-time constants at every call, so the class is too.
//  - A free list of kBatch blocks becomes the alloc list if that is empty, else goes whole to a
//    shared depot (one lock per class); an empty alloc list takes the free list, else a depot
//    batch, else carves, else mallocs. A producer/consumer pair thus moves blocks back to the
//    producer kBatch at a time, one lock per kBatch tasks.
// Invariants: a block is on at most one list; a thread's lists are touched only by that thread
// (a node crosses threads only through the pool's queues, which order its last use before its
// free). At thread exit the lists go to the depot or malloc and later frees on that thread
// bypass the cache (`closed`). Under AddressSanitizer all of this is off (every node comes from
// malloc), so use-after-free of a node is still caught.
//
// Thread-safety: each function touches only the calling thread's cache (and, out of line, the
// depot under its lock). Blocking: never (the depot lock is held for a few stores).
#pragma once

#include <cstddef>
#include <cstdint>

namespace taskpool::detail {

struct NodeCache {
  static constexpr std::size_t kGranule = 16, kClasses = 16, kMaxSize = kGranule * kClasses, kBatch = 64;
  static constexpr std::size_t class_of(std::size_t n) noexcept { return n == 0 ? 0 : (n - 1) / kGranule; }
  struct Block {
    Block* next;
  };
  Block* alloc[kClasses];  // allocations pop
  Block* freed[kClasses];  // frees push; at kBatch blocks the list moves on (out of line)
  std::uint32_t freed_count[kClasses];
  char* slab_cur[kClasses];  // the uncarved rest of this thread's slab of each class
  char* slab_end[kClasses];
  bool active;  // caching is on for this thread (set out of line; never under AddressSanitizer)
  bool closed;  // the thread is exiting: no more caching
};
// Trivially constructible and destructible (__thread), so usable for the whole life of the thread.
extern __thread NodeCache tl_node_cache;
void* node_alloc_slow(std::size_t n);
void node_free_slow(void* p, std::size_t n) noexcept;

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kNodeCacheInline = false;
#else
inline constexpr bool kNodeCacheInline = true;
#endif

inline void* node_alloc(std::size_t n) {
  if (kNodeCacheInline && n <= NodeCache::kMaxSize) {
    NodeCache& k = tl_node_cache;
    const std::size_t c = NodeCache::class_of(n);
    if (NodeCache::Block* b = k.alloc[c]) {
      k.alloc[c] = b->next;
      return b;
    }
  }
  return node_alloc_slow(n);
}
inline void node_free(void* p, std::size_t n) noexcept {
  if (kNodeCacheInline && n <= NodeCache::kMaxSize) {
    NodeCache& k = tl_node_cache;
    const std::size_t c = NodeCache::class_of(n);
    if (k.active && k.freed_count[c] + 1 < NodeCache::kBatch) {
      auto* b = static_cast<NodeCache::Block*>(p);
      b->next = k.freed[c];
      k.freed[c] = b;
      ++k.freed_count[c];
      return;
    }
  }
  node_free_slow(p, n);
}

}  // namespace taskpool::detail
