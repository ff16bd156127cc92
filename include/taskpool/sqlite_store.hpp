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
  // Create the file and schema if missing. false: a missing (or empty) file is StoreError
  // "no database at PATH", and nothing is created.
  bool create = true;
  // Open without writing anything: no migration, no WAL switch, so a read-only file or directory
  // can still be listed, shown and counted. Every write then throws StoreError. An older schema
  // is refused (it needs one read-write open to migrate).
  bool read_only = false;
};

// Opens (and migrates) a taskpool database. Throws StoreError for a file that is not a taskpool
// database, a newer schema, or an unusable file. Safe when many processes open a new file at
// once: exactly one creates the schema, the others wait for it (up to busy_timeout).
std::unique_ptr<TaskStore> open_sqlite_store(const std::string& path, const SqliteOptions& opts = {});

// Current schema version written by this library.
inline constexpr int kSchemaVersion = 6;

}  // namespace taskpool
