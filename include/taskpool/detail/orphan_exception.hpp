// taskpool/detail/orphan_exception.hpp — where an exception goes when nobody can receive it.
// Not part of the API.
//
// An exception escaping an on_done callback, a CompletionQueue job, Options::on_error itself,
// on_thread_stop, or a posted task or periodic run without an error handler has no future and no
// caller to reach. It is written to stderr as one line ("taskpool: exception from WHERE: what()"),
// never rethrown: these run on worker, timer or draining threads, where unwinding would end the
// process. Defined in src/pool/future.cpp.
//
// Thread-safety: may be called from any thread. Blocking: one write to stderr.
#pragma once

#include <exception>

namespace taskpool::detail {

void report_orphan_exception(const char* where, std::exception_ptr e) noexcept;

}  // namespace taskpool::detail
