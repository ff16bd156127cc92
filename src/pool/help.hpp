// src/pool/help.hpp — the hook through which Future::wait() on a worker runs queued tasks.
//
// Set by each worker thread for itself (thread_local, so no synchronization); null elsewhere.
#pragma once

namespace taskpool::detail {

using HelpFn = bool (*)(void* arg);  // runs one queued task; false when none was found
extern thread_local HelpFn tl_help;
extern thread_local void* tl_help_arg;

}  // namespace taskpool::detail
