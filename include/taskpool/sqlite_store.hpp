// taskpool/sqlite_store.hpp — the TaskStore backend on an embedded SQLite database (one file;
// many processes may open it at once). Schema, invariants and recovery: docs/schema.md.
//
// Thread-safety and blocking: as TaskStore (taskpool/store.hpp); the store serializes its one
// connection internally and waits up to busy_timeout for another process's write lock.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "taskpool/store.hpp"

namespace taskpool {

struct SqliteOptions {
  std::chrono::milliseconds busy_timeout = std::chrono::seconds(5);
  bool create = true;      // create the file and schema if missing
  bool read_only = false;  // open without writing (a read-only file or directory can still be read)
};

// Opens (and migrates) a taskpool database. Throws StoreError for a file that is not a taskpool
// database, a newer schema, or an unusable file.
std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path, const SqliteOptions& opts = {});

// Current schema version written by this library.
inline constexpr int kSchemaVersion = 2;

}  // namespace taskpool
