// taskpool/exec_handler.hpp — the built-in "exec" handler: runs a program for a task, no shell.
//
// Payload: {"argv": ["prog", "arg", ...], "timeout": "30s", "cwd": "/dir", "env": {"NAME": "value"}}.
// Only these four fields; "argv" is required (a non-empty array of strings, the program not
// empty), "timeout" is a positive duration of at most 50 years, "cwd" a non-empty directory,
// "env" an object of strings whose names are not empty and contain no '='; no string may contain
// a NUL byte. The result is {"exit_code": N, "output": "..."}: stdout+stderr, the last 64 KiB
// (never more is held in memory); a program killed by signal S has exit_code 128+S. A non-zero
// exit, a timeout or a stop fails the run ("exec: exit code 3; {...}", "exec: timed out; {...}",
// "exec: stopped; {...}"); "exec: cannot run 'prog': <why>" and "exec: cwd '/dir': <why>" say
// which of the two was missing.
//
// Lifetime: each run has a small supervisor process that leads the run's process group, adopts
// every orphaned descendant (a child subreaper) and dies with the worker thread that started it.
// The program starts with an empty signal mask and default dispositions, stdin /dev/null.
//  - timeout or stop: SIGTERM to the whole group, SIGKILL 2 s later; they bound the whole run,
//    also when the program's own child exited and background processes remain.
//  - the program exits: whatever it left running in its group gets SIGTERM, and SIGKILL 2 s
//    later — no process of a run outlives the run.
//  - the daemon dies (even by SIGKILL): the supervisor kills the group with SIGKILL.
// Processes that leave the group (setsid, setpgid) are out of reach of these kills.
//
// Environment: the daemon's, minus every name the payload's "env" sets, plus "env", plus
// TASKPOOL_TASK_ID, TASKPOOL_EXEC_TIME (the run's planned time, ms since the epoch) and
// TASKPOOL_ATTEMPT — exactly one entry per name. These three belong to the handler: a payload
// that sets one is refused. argv[0] without a '/' is looked up in the child's PATH (the payload's
// if it sets one).
//
// Thread-safety: the handler may run on many threads at once. Blocking: a run blocks its
// worker thread until the program and what it left behind are gone, or it was stopped / timed
// out and killed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "taskpool/dispatcher.hpp"

namespace taskpool {

Handler exec_handler();

struct ExecOptions {
  // Programs the handler may run (paths; symlinks resolved). Empty: any. A run whose argv[0]
  // resolves (PATH search as above) to another file fails: "exec: program 'P' is not allowed by
  // --exec-allow".
  std::vector<std::string> allow;
};
Handler exec_handler(const ExecOptions& opts);

// Checks an exec payload as the handler will read it, so a bad one is refused when the task is
// added, not when it runs. Throws std::invalid_argument with a one-line message that starts with
// "exec: " and names the field.
void validate_exec_payload(std::string_view payload);

}  // namespace taskpool
