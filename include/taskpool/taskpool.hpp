// taskpool/taskpool.hpp — umbrella header: everything public in one include.
// CMake: find_package(taskpool) and link taskpool::taskpool.
#pragma once

#include "taskpool/completion_queue.hpp"
#include "taskpool/errors.hpp"
#include "taskpool/future.hpp"
#include "taskpool/options.hpp"
#include "taskpool/store.hpp"
#include "taskpool/dispatcher.hpp"
#include "taskpool/scheduler.hpp"
#include "taskpool/clock.hpp"
#include "taskpool/task_group.hpp"
#include "taskpool/thread_pool.hpp"
