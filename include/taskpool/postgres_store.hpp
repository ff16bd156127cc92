// taskpool/postgres_store.hpp — the TaskStore backend on PostgreSQL (libpq): any number of
// processes on any number of machines share one database. Schema, claim, wake-up
// (LISTEN/NOTIFY), fencing, the database clock and the recovery argument: docs/schema.md
// ("PostgreSQL") and the design note at the top of src/store/postgres/postgres_store.cpp.
//
// Thread-safety and blocking: as TaskStore (taskpool/store.hpp). The store serializes its one
// connection internally (plus a second connection that only LISTENs, for wait_for_change). A
// call blocks for its round trips; a lost connection (server restart, pg_terminate_backend)
// makes the call in flight throw StoreError, and the next call reconnects (with backoff) —
// nothing committed is lost and nothing half-written is kept.
// Errors: StoreError, one line; no message or log line ever shows the URI's password.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "taskpool/store.hpp"

namespace taskpool {

struct PostgresOptions {
  // Connecting (and each reconnect) fails with StoreError after this long (an unreachable host).
  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10);
  // How long opening keeps retrying a server it cannot reach or that refuses the connection
  // (a daemon starting while the server restarts), with backoff and a log line per attempt;
  // 0: the first failed connect throws. A connection lost midway through opening is always
  // retried, for up to connect_timeout.
  std::chrono::milliseconds connect_wait{0};
  // Create the schema if missing / migrate an older one. false: a missing schema is StoreError.
  bool create = true;
  // Nothing is written (the session is default_transaction_read_only): no creation, no
  // migration; every write throws StoreError.
  bool read_only = false;
  // The schema (namespace) holding the tables; "" = the URI's ?schema=NAME, else "taskpool".
  std::string schema;
  // One line per lost connection and per reconnect (password-free). Unset: standard error.
  std::function<void(const std::string& line)> log;
};

// Opens (creating or migrating the schema under an advisory lock) a taskpool store in the
// database `uri` (postgresql://user:password@host:port/dbname?schema=NAME&..., also
// postgres://; other libpq parameters pass through). Throws StoreError for an unreachable
// server, a refused login, a schema that holds tables but is not taskpool's, or a newer version.
std::unique_ptr<TaskStore> open_postgres_store(const std::string& uri, const PostgresOptions& opts = {});

// Schema version of the PostgreSQL store (its own series, independent of SQLite's).
inline constexpr int kPostgresSchemaVersion = 4;

// `uri` with its password (user:PASSWORD@ and password=...) replaced by "***", for messages.
std::string redact_uri(std::string_view uri);

}  // namespace taskpool
