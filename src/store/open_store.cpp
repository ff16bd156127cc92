// src/store/open_store.cpp — open_store(): the backend named by the database string.
#include "taskpool/postgres_store.hpp"
#include "taskpool/sqlite_store.hpp"
#include "taskpool/store.hpp"

namespace taskpool {

std::unique_ptr<TaskStore> open_store(const std::string& db, const StoreOptions& opts) {
  if (db.rfind("postgresql://", 0) == 0 || db.rfind("postgres://", 0) == 0) {
    PostgresOptions o;
    o.connect_timeout = opts.connect_timeout;
    o.connect_wait = opts.connect_wait;
    o.create = opts.create;
    o.read_only = opts.read_only;
    return open_postgres_store(db, o);
  }
  return open_sqlite_store(db, {.busy_timeout = opts.busy_timeout, .create = opts.create, .read_only = opts.read_only});
}

}  // namespace taskpool
