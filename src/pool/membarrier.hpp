// src/pool/membarrier.hpp — an asymmetric StoreLoad barrier (Linux membarrier).
//
// Design note. Some orderings are needed on a hot path only rarely: a worker pushing a task into
// its own deque must order that store before its check for sleeping workers, but that ordering
// matters only to a worker on its way to sleep. A full fence on every push costs a locked
// instruction per task. Instead the pusher uses `light_barrier()` (a compiler barrier) and the
// rare side calls `heavy_barrier()`: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) makes every
// other running thread of the process execute a full memory barrier before it returns.
// Why that suffices (for a pusher P: store X; light; load Y, and a sleeper S: RMW Y; heavy;
// load X): the barrier P executes falls somewhere in P's program. If before P's store, P's load
// comes after it and sees S's RMW (done before the heavy barrier began); if after, P's store is
// visible to S's load. Either P sees the sleeper or the sleeper sees the task.
// Availability: registered once per process (kernel >= 4.14). Where the kernel or a sandbox
// refuses it, or TASKPOOL_NO_MEMBARRIER=1 is set in the environment, asymmetric_barriers() is
// false and callers keep their symmetric protocol (an RMW on the shared word per notification).
// A registered barrier can still fail later (the kernel returns ENOMEM when it cannot allocate its
// CPU mask): heavy_barrier() then returns false, having ordered nothing, and the caller must not
// rely on it (event_count.hpp, "Barrier failure").
#pragma once

namespace taskpool::detail {

// True when heavy_barrier() was registered and worked once; fixed for the life of the process.
bool asymmetric_barriers() noexcept;

// Only when asymmetric_barriers(): a full barrier on every running thread of this process.
// False when the system call failed: then no barrier was executed.
[[nodiscard]] bool heavy_barrier() noexcept;

// The pusher's half: keeps the compiler from moving memory accesses across it.
inline void light_barrier() noexcept { asm volatile("" ::: "memory"); }

}  // namespace taskpool::detail
