// src/store/sqlite.hpp — minimal RAII over the SQLite C API: a connection and prepared
// statements. Every statement is prepared once and reused; values are always bound, never
// spliced into SQL text. Not thread-safe: SqliteTaskStore serializes access with its mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "taskpool/sqlite_store.hpp"

namespace taskpool::store {

// A StoreError that keeps SQLite's extended result code (the connection's own error code is
// overwritten by the rollback that runs while the exception unwinds).
class SqliteError : public StoreError {
 public:
  SqliteError(const std::string& what, int code, std::string detail)
      : StoreError(what), code_(code), detail_(std::move(detail)) {}
  int code() const noexcept { return code_; }
  const std::string& detail() const noexcept { return detail_; }  // SQLite's own message
  bool busy() const noexcept { return (code_ & 0xff) == SQLITE_BUSY || (code_ & 0xff) == SQLITE_LOCKED; }

 private:
  int code_;
  std::string detail_;
};

[[noreturn]] void throw_sqlite(sqlite3* db, int rc, std::string_view what);

class Stmt {
 public:
  Stmt() = default;
  Stmt(sqlite3* db, std::string_view sql);
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)) {}
  Stmt& operator=(Stmt&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(s_, o.s_);
    return *this;
  }
  ~Stmt() { sqlite3_finalize(s_); }

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Stmt& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Stmt& bind_null(int i);
  template <class T>
  Stmt& bind(int i, const std::optional<T>& v) {
    return v ? bind(i, *v) : bind_null(i);
  }
  // Steps once: true while a row is available.
  bool step();
  // Runs to completion (for statements without rows); resets.
  void run();
  void reset() noexcept {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }

  std::int64_t i64(int col) const { return sqlite3_column_int64(s_, col); }
  bool is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  std::string text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  // Valid until the next step or reset.
  std::string_view text_view(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string_view();
  }
  std::optional<std::string> opt_text(int col) const { return is_null(col) ? std::nullopt : std::optional(text(col)); }
  std::optional<std::int64_t> opt_i64(int col) const { return is_null(col) ? std::nullopt : std::optional(i64(col)); }

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

// Resets a statement when the scope ends (also on exceptions).
class StmtScope {
 public:
  explicit StmtScope(Stmt& s) : s_(s) {}
  ~StmtScope() { s_.reset(); }
  Stmt* operator->() { return &s_; }
  Stmt& operator*() { return s_; }

 private:
  Stmt& s_;
};

}  // namespace taskpool::store
