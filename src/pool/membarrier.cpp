// src/pool/membarrier.cpp — see membarrier.hpp.
#include "pool/membarrier.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>

#include "pool/test_hooks.hpp"

namespace taskpool::detail {
namespace {

bool register_membarrier() noexcept {
  // An escape hatch (and how the tests cover the fallback): TASKPOOL_NO_MEMBARRIER=1.
  if (const char* off = std::getenv("TASKPOOL_NO_MEMBARRIER"); off != nullptr && *off != '\0' && *off != '0') return false;
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0 || (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0 ||
      (cmds & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0)
    return false;
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) != 0) return false;
  // One trial run: a refusal here (seccomp, an emulator) must show before anyone relies on it.
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

}  // namespace

bool asymmetric_barriers() noexcept {
  static const bool ok = register_membarrier();
  return ok;
}

bool heavy_barrier() noexcept {
  if (inject_fault(FaultPoint::membarrier)) return false;
  return syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0;
}

}  // namespace taskpool::detail
