// taskpool/core.hpp — the executor alone: the pool, futures, the completion queue, task groups
// and timers (with cron schedules). Needs threads and date-tz (CMake: link taskpool::core; no SQLite
// anywhere).
#pragma once

#include "taskpool/clock.hpp"
#include "taskpool/completion_queue.hpp"
#include "taskpool/cron.hpp"
#include "taskpool/errors.hpp"
#include "taskpool/future.hpp"
#include "taskpool/options.hpp"
#include "taskpool/scheduler.hpp"
#include "taskpool/task_group.hpp"
#include "taskpool/thread_pool.hpp"
