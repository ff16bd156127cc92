// taskpool/taskpool.hpp — umbrella header: everything public in one include.
// CMake: find_package(taskpool) and link taskpool::taskpool (or taskpool::core for the executor
// alone, with taskpool/core.hpp).
#pragma once

#include "taskpool/core.hpp"
#include "taskpool/dispatcher.hpp"
#include "taskpool/exec_handler.hpp"
#include "taskpool/postgres_store.hpp"
#include "taskpool/sqlite_store.hpp"
#include "taskpool/store.hpp"
#include "taskpool/time_text.hpp"
