// src/store/postgres/pg.hpp — a thin RAII layer over libpq for the PostgreSQL store: owned
// results, text parameters for prepared statements, and connection-string handling that never
// leaks a password (?schema= is taskpool's own parameter and is taken out before libpq sees it).
//
// Thread-safety: none of its own; a Conn is used under its owner's lock. Blocking: each call
// is a network round trip.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "taskpool/store.hpp"

namespace taskpool::store::pg {

// A failed statement: the one-line message and the SQLSTATE ("" when none, e.g. a lost link).
class PgError : public StoreError {
 public:
  PgError(const std::string& msg, std::string sqlstate, bool lost)
      : StoreError(msg), sqlstate_(std::move(sqlstate)), lost_(lost) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  bool connection_lost() const noexcept { return lost_; }

 private:
  std::string sqlstate_;
  bool lost_;
};

struct ResultDeleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};
class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}
  int rows() const { return PQntuples(r_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string text(int row, int col) const { return std::string(PQgetvalue(r_.get(), row, col), PQgetlength(r_.get(), row, col)); }
  std::optional<std::string> opt_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return text(row, col);
  }
  std::int64_t i64(int row, int col) const;  // NULL reads as 0
  std::optional<std::int64_t> opt_i64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return i64(row, col);
  }
  bool boolean(int row, int col) const { return !is_null(row, col) && PQgetvalue(r_.get(), row, col)[0] == 't'; }
  std::int64_t affected() const;  // PQcmdTuples
  PGresult* get() const { return r_.get(); }

 private:
  std::unique_ptr<PGresult, ResultDeleter> r_;
};

// Text-format parameters of one statement.
class Params {
 public:
  Params& add(std::string_view s) {
    v_.emplace_back(std::string(s));
    return *this;
  }
  Params& add(const char* s) { return add(std::string_view(s)); }
  Params& add(const std::string& s) { return add(std::string_view(s)); }
  Params& add(std::int64_t n) {
    v_.emplace_back(std::to_string(n));
    return *this;
  }
  Params& add(int n) { return add(static_cast<std::int64_t>(n)); }
  Params& add(bool b) {
    v_.emplace_back(b ? "true" : "false");
    return *this;
  }
  Params& add_null() {
    v_.emplace_back(std::nullopt);
    return *this;
  }
  template <class T>
  Params& add(const std::optional<T>& o) {
    if (o) return add(*o);
    return add_null();
  }
  std::vector<const char*> values() const {
    std::vector<const char*> out;
    out.reserve(v_.size());
    for (const auto& s : v_) out.push_back(s ? s->c_str() : nullptr);
    return out;
  }
  int size() const { return static_cast<int>(v_.size()); }

 private:
  std::vector<std::optional<std::string>> v_;
};

// A text-format array literal built element by element, for an `$n::T[]` parameter (set-based
// statements: unnest, = ANY): NULL bare, anything else double-quoted with backslash and double
// quote escaped, so any text (braces, commas, quotes, newlines) round-trips.
class ArrayLiteral {
 public:
  ArrayLiteral& add(const char* v);  // nullptr: NULL
  ArrayLiteral& add(std::string_view v);
  ArrayLiteral& add(const std::string& v) { return add(std::string_view(v)); }
  ArrayLiteral& add(std::int64_t n);
  ArrayLiteral& add(int n) { return add(static_cast<std::int64_t>(n)); }
  ArrayLiteral& add(bool b) { return add(std::string_view(b ? "t" : "f")); }
  template <class T>
  ArrayLiteral& add(const std::optional<T>& o) {
    if (o) return add(*o);
    return add(static_cast<const char*>(nullptr));
  }
  std::size_t size() const { return n_; }
  std::string str() const { return s_ + '}'; }

 private:
  std::string s_ = "{";
  std::size_t n_ = 0;
};

// A PostgreSQL text[] literal of `items` (each element quoted), for an `$n::text[]` parameter.
std::string text_array(const std::vector<std::string>& items);

// The connection string split: what libpq gets (schema= removed, connect_timeout and
// application_name added unless given) and the schema named by ?schema= ("" when absent).
struct ConnInfo {
  std::string libpq_uri, schema, redacted;
};
ConnInfo parse_uri(const std::string& uri, std::chrono::milliseconds connect_timeout);

// One line, no password: `msg` with newlines folded and `secret` (if any) replaced.
std::string one_line(std::string msg, const std::string& uri);

struct ConnDeleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using ConnPtr = std::unique_ptr<PGconn, ConnDeleter>;

// Connects (blocking, within the URI's connect_timeout); throws StoreError "cannot connect to
// REDACTED: reason" on failure.
ConnPtr connect(const ConnInfo& info, const std::string& original_uri);

// Runs `sql` (no parameters: DDL, BEGIN/COMMIT); throws PgError.
Result exec(PGconn* c, const char* sql, const std::string& uri);
// Runs a parameterised statement once (unnamed; used only while opening).
Result exec_params(PGconn* c, const char* sql, const Params& p, const std::string& uri);
// Prepares `sql` as `name`; throws PgError.
void prepare(PGconn* c, const std::string& name, const std::string& sql, const std::string& uri);
// Runs the prepared statement `name`; throws PgError (connection_lost() when the link died).
Result exec_prepared(PGconn* c, const std::string& name, const Params& p, const std::string& uri);
// Throws PgError for a result that is not a success.
Result check(PGconn* c, PGresult* r, const std::string& uri);

}  // namespace taskpool::store::pg
