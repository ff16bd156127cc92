// src/store/postgres/pg.cpp — see pg.hpp.
#include "store/postgres/pg.hpp"

#include <charconv>
#include <cstring>

#include "taskpool/postgres_store.hpp"

namespace taskpool {

namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    int v = 0;
    if (s[i] == '%' && i + 2 < s.size() &&
        std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16).ptr == s.data() + i + 3) {
      out += static_cast<char>(v);
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// The password as written in the URI (userinfo or password= parameter), or "".
std::vector<std::string> uri_secrets(std::string_view uri) {
  std::vector<std::string> out;
  auto scheme = uri.find("://");
  if (scheme != std::string_view::npos) {
    std::string_view rest = uri.substr(scheme + 3);
    std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
      std::string_view userinfo = authority.substr(0, at);
      auto colon = userinfo.find(':');
      if (colon != std::string_view::npos && colon + 1 < userinfo.size()) out.emplace_back(userinfo.substr(colon + 1));
    }
  }
  auto q = uri.find('?');
  while (q != std::string_view::npos) {
    std::string_view param = uri.substr(q + 1);
    auto end = param.find('&');
    param = param.substr(0, end);
    if (param.substr(0, 9) == "password=" && param.size() > 9) out.emplace_back(param.substr(9));
    q = end == std::string_view::npos ? end : uri.find('&', q + 1);
  }
  std::vector<std::string> all = out;
  for (const auto& s : out) all.push_back(percent_decode(s));
  return all;
}

void replace_all(std::string& s, const std::string& what, const std::string& with) {
  if (what.empty()) return;
  for (auto p = s.find(what); p != std::string::npos; p = s.find(what, p + with.size())) s.replace(p, what.size(), with);
}

}  // namespace

std::string redact_uri(std::string_view uri) {
  std::string out(uri);
  auto scheme = out.find("://");
  if (scheme != std::string::npos) {
    auto start = scheme + 3;
    auto end = out.find_first_of("/?", start);
    if (end == std::string::npos) end = out.size();
    auto at = out.rfind('@', end);
    if (at != std::string::npos && at >= start) {
      auto colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  for (auto p = out.find("password="); p != std::string::npos; p = out.find("password=", p + 1)) {
    if (p > 0 && out[p - 1] != '?' && out[p - 1] != '&') continue;
    auto end = out.find('&', p);
    out.replace(p + 9, (end == std::string::npos ? out.size() : end) - p - 9, "***");
  }
  return out;
}

namespace store::pg {

std::int64_t Result::i64(int row, int col) const {
  const char* v = PQgetvalue(r_.get(), row, col);
  std::int64_t n = 0;
  std::from_chars(v, v + std::strlen(v), n);
  return n;
}

std::int64_t Result::affected() const {
  const char* v = PQcmdTuples(r_.get());
  std::int64_t n = 0;
  std::from_chars(v, v + std::strlen(v), n);
  return n;
}

ArrayLiteral& ArrayLiteral::add(const char* v) {
  if (v == nullptr) {
    if (n_++) s_ += ',';
    s_ += "NULL";
    return *this;
  }
  return add(std::string_view(v));
}

ArrayLiteral& ArrayLiteral::add(std::string_view v) {
  if (n_++) s_ += ',';
  s_ += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') s_ += '\\';
    s_ += c;
  }
  s_ += '"';
  return *this;
}

ArrayLiteral& ArrayLiteral::add(std::int64_t n) {
  if (n_++) s_ += ',';
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  s_.append(buf, end);
  return *this;
}

std::string text_array(const std::vector<std::string>& items) {
  ArrayLiteral a;
  for (const std::string& s : items) a.add(s);
  return a.str();
}

ConnInfo parse_uri(const std::string& uri, std::chrono::milliseconds connect_timeout) {
  ConnInfo info;
  info.redacted = redact_uri(uri);
  auto q = uri.find('?');
  std::string base = uri.substr(0, q);
  std::vector<std::string> params;
  bool has_timeout = false, has_app = false;
  if (q != std::string::npos) {
    std::string_view rest(uri);
    rest.remove_prefix(q + 1);
    while (!rest.empty()) {
      auto amp = rest.find('&');
      std::string_view p = rest.substr(0, amp);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      if (p.empty()) continue;
      if (p.substr(0, 7) == "schema=") {
        info.schema = percent_decode(p.substr(7));
        continue;
      }
      if (p.substr(0, 16) == "connect_timeout=") has_timeout = true;
      if (p.substr(0, 17) == "application_name=") has_app = true;
      params.emplace_back(p);
    }
  }
  if (!has_timeout) {
    auto secs = std::max<std::int64_t>(2, (connect_timeout.count() + 999) / 1000);  // libpq's minimum is 2 s
    params.push_back("connect_timeout=" + std::to_string(secs));
  }
  if (!has_app) params.emplace_back("application_name=taskpool");
  info.libpq_uri = base;
  for (std::size_t i = 0; i < params.size(); ++i) info.libpq_uri += (i ? "&" : "?") + params[i];
  return info;
}

std::string one_line(std::string msg, const std::string& uri) {
  for (const std::string& s : uri_secrets(uri)) replace_all(msg, s, "***");
  for (char& c : msg)
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  std::string out;
  for (char c : msg)
    if (!(c == ' ' && !out.empty() && out.back() == ' ')) out += c;
  return out;
}

ConnPtr connect(const ConnInfo& info, const std::string& original_uri) {
  ConnPtr c(PQconnectdb(info.libpq_uri.c_str()));
  if (!c) throw StoreError("taskpool store: cannot connect to " + info.redacted + ": out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK)
    throw StoreError(one_line("taskpool store: cannot connect to " + info.redacted + ": " + PQerrorMessage(c.get()), original_uri));
  PQsetNoticeProcessor(c.get(), [](void*, const char*) {}, nullptr);  // NOTICEs ("already exists, skipping") are noise
  return c;
}

Result check(PGconn* c, PGresult* r, const std::string& uri) {
  Result res(r);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_SINGLE_TUPLE) return res;
  const bool lost = PQstatus(c) == CONNECTION_BAD;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = r ? PQresultErrorMessage(r) : "";
  if (msg.empty()) msg = PQerrorMessage(c);
  if (const char* primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : nullptr) msg = primary;
  std::string text = lost ? "taskpool store: lost the connection to PostgreSQL: " + msg : "taskpool store: " + msg;
  throw PgError(one_line(text, uri), state ? state : "", lost);
}

Result exec(PGconn* c, const char* sql, const std::string& uri) { return check(c, PQexec(c, sql), uri); }

Result exec_params(PGconn* c, const char* sql, const Params& p, const std::string& uri) {
  auto v = p.values();
  return check(c, PQexecParams(c, sql, p.size(), nullptr, v.data(), nullptr, nullptr, 0), uri);
}

void prepare(PGconn* c, const std::string& name, const std::string& sql, const std::string& uri) {
  check(c, PQprepare(c, name.c_str(), sql.c_str(), 0, nullptr), uri);
}

Result exec_prepared(PGconn* c, const std::string& name, const Params& p, const std::string& uri) {
  auto v = p.values();
  return check(c, PQexecPrepared(c, name.c_str(), p.size(), v.data(), nullptr, nullptr, 0), uri);
}

}  // namespace store::pg
}  // namespace taskpool
