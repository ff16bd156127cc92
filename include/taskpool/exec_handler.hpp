// taskpool/exec_handler.hpp — the built-in "exec" handler: runs a program for a task, no shell.
//
// Payload: {"argv": ["prog", "arg", ...], "timeout": "30s", "cwd": "/dir", "env": {"NAME": "value"}}.
// Runs argv with posix_spawn (no shell); the result is {"exit_code": N, "output": "..."}
// (stdout+stderr, the last 64 KiB). A non-zero exit or a timeout fails the run. The stop token
// and the timeout kill the process group (SIGTERM, then SIGKILL after 2 s). The child inherits
// the environment plus the payload's "env", and TASKPOOL_TASK_ID, TASKPOOL_EXEC_TIME (the run's
// planned time, ms since the epoch) and TASKPOOL_ATTEMPT.
//
// Thread-safety: the handler may run on many threads at once. Blocking: a run blocks its
// worker thread until the program ends, is stopped, or times out.
#pragma once

#include "taskpool/dispatcher.hpp"

namespace taskpool {

Handler exec_handler();

// Checks an exec payload as the handler will read it, so a bad one is refused when the task is
// added, not when it runs. Throws std::invalid_argument with a one-line message naming the field.
void validate_exec_payload(std::string_view payload);

}  // namespace taskpool
