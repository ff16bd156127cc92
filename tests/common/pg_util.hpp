// tests/common/pg_util.hpp — the test PostgreSQL server: its URI (TASKPOOL_TEST_PG, set by
// tests/pg/cluster.sh through scripts/test), a fresh schema per test, and plain SQL on it
// (a libpq connection of its own, as another program would have).
//
// TASKPOOL_TEST_PG unset: PostgreSQL tests FAIL (nothing is skipped on a fresh machine);
// TASKPOOL_TEST_PG=skip: a developer's explicit opt-out, the tests are skipped.
#pragma once

#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

namespace taskpool::test {

inline constexpr const char* kPgUnset =
    "TASKPOOL_TEST_PG is not set: start a server with `eval \"$(tests/pg/cluster.sh start)\"` (scripts/test "
    "does), point it at one, or opt out with TASKPOOL_TEST_PG=skip";
// The base URI, "" when unset (the caller FAILs with kPgUnset).
inline std::string pg_base_uri() {
  const char* v = std::getenv("TASKPOOL_TEST_PG");
  return v ? v : "";
}
inline bool pg_skipped() {
  const char* v = std::getenv("TASKPOOL_TEST_PG");
  return v && std::string(v) == "skip";
}

// A schema name no other test (process, thread) uses.
inline std::string fresh_schema(const std::string& prefix = "t") {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" + std::to_string(rd() % 100000);
}

inline std::string with_schema(const std::string& uri, const std::string& schema) {
  return uri + (uri.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema;
}

// Runs `sql` on `uri` (a libpq URI without ?schema=) with search_path = schema ("" = default);
// returns the first value of the last result, nullopt when it has none. Throws on an error.
inline std::optional<std::string> pg_query(const std::string& uri, const std::string& schema, const std::string& sql) {
  PGconn* c = PQconnectdb(uri.c_str());
  auto fail = [&](const std::string& what) {
    std::string msg = what + ": " + PQerrorMessage(c);
    PQfinish(c);
    throw std::runtime_error(msg);
  };
  if (PQstatus(c) != CONNECTION_OK) fail("connect");
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  if (!schema.empty()) {
    const char* p[] = {schema.c_str()};
    PGresult* r = PQexecParams(c, "SELECT set_config('search_path', quote_ident($1), false)", 1, nullptr, p, nullptr, nullptr, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (!ok) fail("search_path");
  }
  PGresult* r = PQexec(c, sql.c_str());
  ExecStatusType st = PQresultStatus(r);
  std::optional<std::string> out;
  if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) out = PQgetvalue(r, 0, 0);
  PQclear(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) fail(sql);
  PQfinish(c);
  return out;
}

inline void pg_drop_schema(const std::string& uri, const std::string& schema) {
  try {
    PGconn* c = PQconnectdb(uri.c_str());
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    char* q = PQescapeIdentifier(c, schema.c_str(), schema.size());
    if (q) {
      PQclear(PQexec(c, ("DROP SCHEMA IF EXISTS " + std::string(q) + " CASCADE").c_str()));
      PQfreemem(q);
    }
    PQfinish(c);
  } catch (...) {
  }
}

}  // namespace taskpool::test
