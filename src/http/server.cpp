// src/http/server.cpp — the HTTP API, the dashboard and /metrics (taskpool/http.hpp).
//
// Design note (what each request may do, and how it is checked).
//  - Auth: every /api/v1/ path, and /metrics unless metrics_public, needs
//    `Authorization: Bearer TOKEN`. The comparison reads every byte of both strings whatever
//    they hold (constant time in the token's content), so a timing side channel does not leak a
//    prefix. Without a configured token a random one is made from /dev/urandom (Jupyter's
//    model: the token is the capability; loopback is no trust boundary on a shared machine).
//    The dashboard's files need no token: they hold no data, and the page sends the token.
//  - Reads: GET only, and GET never changes anything. Writes: POST and DELETE, with
//    Content-Type application/json (a browser cannot send that cross-origin without a preflight
//    that this server never answers, so a page elsewhere cannot post a form here even if it
//    guessed the token) and a JSON body (empty = {}). Bodies are capped (413), lists and batches
//    too (400).
//  - Every task change goes through one TaskStore call that validates before writing, so bad
//    input is refused with nothing written; the message is the one the command prints for the
//    same mistake. 400 bad input, 401 auth, 404 no such task or path, 409 the task's state (or,
//    in a watcher, the daemon's absence) does not allow it, 413 too large, 500 the store failed.
//  - The dashboard's files are embedded (src/http/assets.hpp) and looked up by exact name:
//    nothing on disk is reachable. Every response carries a Content-Security-Policy that allows
//    only this origin's script and style (no inline script, no eval), nosniff, no framing, and
//    no referrer (the first page load carries the token in its URL).
//  - /metrics reads counters kept in memory and a snapshot of the store's per-status counts.
//    stats() counts index entries (SQLite: a covering scan of tasks_status and of the unacked
//    reports' partial index), never the table, but that is still linear: ~100 ms at 1M rows on
//    2 busy cores. So a background thread refreshes the snapshot every max(2 s, 20 x the time
//    a count took) while anyone asked for it in the last 30 s, and a scrape only copies it: a
//    scrape at 1M rows costs what it costs at 10. A snapshot older than 10 s (nobody asked for
//    a while) is refreshed by the request that finds it. GET /api/v1/stats stays exact.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <httplib.h>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "http/assets.hpp"
#include "http/metrics.hpp"
#include "store/records.hpp"
#include "store/task_rules.hpp"
#include "taskpool/exec_handler.hpp"
#include "taskpool/http.hpp"

namespace taskpool {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxPage = 1000;      // rows per GET /api/v1/tasks
constexpr std::size_t kDefaultPage = 50;
constexpr std::size_t kMaxBatch = 100'000;  // records per POST /api/v1/tasks
constexpr std::size_t kMaxIds = 100'000;    // ids per bulk call
// A node whose heartbeat is older is dead (as `taskpool nodes`' default --max-age).
constexpr std::chrono::milliseconds kNodeMaxAge = std::chrono::seconds(15);

// An error with its HTTP status; the message is what the command prints for the same mistake.
struct HttpError : std::runtime_error {
  HttpError(int s, const std::string& what) : std::runtime_error(what), status(s) {}
  int status;
};

std::string random_token() {
  unsigned char b[32];
  int fd = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  std::size_t got = 0;
  while (fd >= 0 && got < sizeof b) {
    ssize_t n = ::read(fd, b + got, sizeof b - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (fd >= 0) ::close(fd);
  if (got != sizeof b) throw std::runtime_error("cannot read /dev/urandom for the HTTP token");
  std::string out;
  char hex[3];
  for (unsigned char c : b) {
    std::snprintf(hex, sizeof hex, "%02x", c);
    out += hex;
  }
  return out;
}

// Constant time in the contents: every byte of `got` and `want` is read whatever they hold.
bool same_token(std::string_view got, std::string_view want) {
  unsigned char diff = got.size() == want.size() ? 0 : 1;
  const std::size_t n = std::max(got.size(), want.size());
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char a = i < got.size() ? static_cast<unsigned char>(got[i]) : 0;
    unsigned char b = i < want.size() ? static_cast<unsigned char>(want[i]) : 0;
    diff |= static_cast<unsigned char>(a ^ b);
  }
  return diff == 0;
}

std::int64_t parse_id(const std::string& s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18)
    throw HttpError(400, "bad task id '" + records::printable(s) + "'");
  return std::stoll(s);
}

std::size_t parse_count(const std::string& s, const char* field) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 9)
    throw HttpError(400, std::string(field) + ": expected a non-negative integer, got '" + records::printable(s) + "'");
  return static_cast<std::size_t>(std::stoull(s));
}

// A filter from query parameters (GET) or a JSON object (bulk bodies): the same names.
// `get(name)` returns the value or "" when absent.
template <class Get>
ListQuery query_from(const Get& get) {
  ListQuery q;
  if (auto s = get("status"); !s.empty()) {
    q.status = parse_task_status(s);
    if (!q.status)
      throw HttpError(400, "unknown status '" + records::printable(s) + "' (waiting|running|done|failed|cancelled)");
  }
  q.handler = get("handler");
  q.creator_id = get("creator");
  q.group_id = get("group");
  q.text = get("text");
  if (auto s = get("due_before"); !s.empty()) q.due_before = parse_time(s, "due_before");
  if (auto s = get("due_after"); !s.empty()) q.due_after = parse_time(s, "due_after");
  if (auto s = get("after_id"); !s.empty()) q.after_id = parse_id(s);
  if (auto s = get("before_id"); !s.empty()) q.before_id = parse_id(s);
  if (auto s = get("order"); !s.empty()) {
    if (s != "newest" && s != "oldest") throw HttpError(400, "order: expected newest or oldest, got '" + records::printable(s) + "'");
    q.newest_first = s == "newest";
  }
  return q;
}

json stats_json(const StoreStats& s) {
  json j = {{"waiting", s.waiting}, {"running", s.running},     {"done", s.done},
            {"failed", s.failed},   {"cancelled", s.cancelled}, {"unacked_reports", s.unacked_reports}};
  j["next_due"] = s.next_due ? json(format_time_precise(*s.next_due)) : json();
  return j;
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

}  // namespace

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

struct HttpServer::Impl {
  Impl(TaskStore& s, HttpOptions o) : store(s), opts(std::move(o)) {
    if (opts.port < 0 || opts.port > 65535) throw std::invalid_argument("--http: port " + std::to_string(opts.port) + " is out of range");
    if (opts.token.empty()) {
      if (!is_loopback(opts.host))
        throw std::invalid_argument("--http " + opts.host +
                                    ": an address other than loopback needs an explicit token (--http-token or TASKPOOL_HTTP_TOKEN)");
      opts.token = random_token();
    }
    started = std::chrono::system_clock::now();
  }

  TaskStore& store;
  HttpOptions opts;
  std::shared_ptr<http::RunMetrics> metrics = std::make_shared<http::RunMetrics>();
  std::atomic<Dispatcher*> dispatcher{nullptr};
  std::atomic<ThreadPool*> pool{nullptr};
  std::atomic<bool> paused{false};
  std::atomic<std::uint64_t> store_errors{0};  // failed store calls while serving requests
  wall_time started;
  httplib::Server svr;
  std::thread thread;
  int port = 0;
  std::mutex start_mu;  // serializes start/stop

  // The table-count snapshot (see the design note). stats_mu guards the members below it.
  static constexpr std::chrono::milliseconds kStatsEvery{2000}, kStatsMaxAge{10000}, kStatsDemand{30000};
  using steady = std::chrono::steady_clock;
  std::mutex stats_mu;
  std::condition_variable stats_cv;
  std::optional<StoreStats> stats_snap;
  steady::time_point stats_at{}, stats_wanted{};
  steady::duration stats_cost{};
  bool stats_stop = false;
  std::thread stats_thread;

  StoreStats table_stats() {
    std::unique_lock lk(stats_mu);
    const auto now = steady::now();
    stats_wanted = now;
    if (stats_snap && now - stats_at <= kStatsMaxAge) return *stats_snap;
    return refresh_stats(lk);
  }
  // Counts the table with stats_mu released, then stores the snapshot; lk is held again on
  // return, and when store.stats() throws.
  StoreStats refresh_stats(std::unique_lock<std::mutex>& lk) {
    lk.unlock();
    const auto t0 = steady::now();
    std::optional<StoreStats> s;
    try {
      s = store.stats();
    } catch (...) {
      lk.lock();
      throw;
    }
    const auto t1 = steady::now();
    lk.lock();
    stats_snap = s;
    stats_at = t1;
    stats_cost = t1 - t0;
    return *s;
  }
  void stats_loop() {
    std::unique_lock lk(stats_mu);
    while (!stats_stop) {
      const auto period = std::max<steady::duration>(kStatsEvery, stats_cost * 20);
      stats_cv.wait_for(lk, period);
      if (stats_stop) break;
      const auto now = steady::now();
      if (now - stats_wanted > kStatsDemand || now - stats_at < period) continue;
      try {
        refresh_stats(lk);
      } catch (const std::exception& e) {
        ++store_errors;
        log(std::string("http: counting tasks failed: ") + e.what());
      }
    }
  }

  void log(const std::string& line) {
    if (opts.log) opts.log(line);
  }

  // ---- request plumbing -----------------------------------------------------------------

  static void send_json(httplib::Response& res, const json& j, int status = 200) {
    res.status = status;
    res.set_content(records::dump(j), "application/json");
  }

  bool authorized(const httplib::Request& req) const {
    const std::string h = req.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    if (h.size() < kBearer.size() || h.compare(0, kBearer.size(), kBearer) != 0) return false;
    return same_token(std::string_view(h).substr(kBearer.size()), opts.token);
  }

  // The JSON body of a POST/DELETE: the content type must say JSON; empty means {}.
  static json body_of(const httplib::Request& req) {
    const std::string type = req.get_header_value("Content-Type");
    if (type.rfind("application/json", 0) != 0) throw HttpError(415, "state changes need a JSON body (Content-Type: application/json)");
    if (req.body.empty()) return json::object();
    try {
      return json::parse(req.body);
    } catch (const json::parse_error& e) {
      throw HttpError(400, std::string("malformed JSON body: ") + e.what());
    }
  }

  // Runs f, mapping exceptions to the API's error objects.
  template <class F>
  void guarded(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const HttpError& e) {
      send_json(res, {{"error", records::printable(e.what())}}, e.status);
    } catch (const std::invalid_argument& e) {
      send_json(res, {{"error", records::printable(e.what())}}, 400);
    } catch (const json::exception& e) {
      send_json(res, {{"error", records::printable(e.what())}}, 400);
    } catch (const std::exception& e) {
      ++store_errors;
      log(std::string("http: ") + e.what());
      send_json(res, {{"error", records::printable(e.what())}}, 500);
    }
  }

  // Why an existing task refused a state change: 404 when it does not exist, else 409.
  [[noreturn]] void refused(std::int64_t id, const std::string& why) {
    if (!store.get(id)) throw HttpError(404, "no task " + std::to_string(id));
    throw HttpError(409, "task " + std::to_string(id) + " " + why);
  }

  Dispatcher& daemon() {
    Dispatcher* d = dispatcher.load();
    if (!d) throw HttpError(409, "this server watches the database and runs no tasks (taskpool web): nothing to pause, resume or resize");
    return *d;
  }

  // ---- endpoints ------------------------------------------------------------------------

  void list_tasks(const httplib::Request& req, httplib::Response& res) {
    ListQuery q = query_from([&](const char* n) { return req.has_param(n) ? req.get_param_value(n) : std::string(); });
    q.limit = req.has_param("limit") ? parse_count(req.get_param_value("limit"), "limit") : kDefaultPage;
    if (q.limit == 0 || q.limit > kMaxPage) throw HttpError(400, "limit: expected 1.." + std::to_string(kMaxPage));
    json tasks = json::array();
    std::int64_t last = 0;
    store.scan(q, [&](const TaskRecord& r) {
      tasks.push_back(records::to_json(r));
      last = r.id;
      return true;
    });
    json j = {{"tasks", tasks}};
    // The next page's cursor, when this page was full.
    const bool more = tasks.size() == q.limit;
    j["next"] = more ? json({{q.newest_first ? "before_id" : "after_id", last}}) : json();
    send_json(res, j);
  }

  void get_task(std::int64_t id, httplib::Response& res) {
    auto r = store.get(id);
    if (!r) throw HttpError(404, "no task " + std::to_string(id));
    json runs = json::array();
    for (auto& rep : store.task_reports(id, 100)) runs.push_back(records::to_json(rep));
    send_json(res, {{"task", records::to_json(*r)}, {"reports", runs}});
  }

  void add_tasks(const httplib::Request& req, httplib::Response& res) {
    body_of(req);  // content type and well-formedness first
    auto first = req.body.find_first_not_of(" \t\r\n");
    const bool batch = first != std::string::npos && req.body[first] == '[';
    auto tasks = records::tasks_from_text(req.body, [](const NewTask& t) {
      if ((t.exec_task.empty() ? t.task_type : t.exec_task) == "exec") validate_exec_payload(t.payload);
    });
    if (tasks.size() > kMaxBatch) throw HttpError(413, "at most " + std::to_string(kMaxBatch) + " records per request");
    if (!batch && tasks.size() != 1) throw HttpError(400, "one record, or an array of records");
    auto ids = tasks.size() == 1 && !batch ? std::vector<std::int64_t>{store.add(tasks[0])} : store.add_batch(tasks);
    if (Dispatcher* d = dispatcher.load()) d->wake();
    send_json(res, batch ? json{{"ids", ids}} : json{{"id", ids[0]}}, 201);
  }

  void task_action(std::int64_t id, const std::string& action, const httplib::Request& req, httplib::Response& res) {
    json body = body_of(req);
    if (action == "cancel") {
      if (!store.cancel(id)) refused(id, "is not waiting or running");
    } else if (action == "retry") {
      if (!store.retry(id)) refused(id, "is not done, failed or cancelled (or its unique key is live again)");
      if (Dispatcher* d = dispatcher.load()) d->wake();
    } else if (action == "extend") {
      const bool has_by = body.contains("by"), has_to = body.contains("to");
      if (has_by == has_to) throw HttpError(400, "extend needs \"by\" (a duration) or \"to\" (a time), not both");
      bool ok = has_by ? store.extend(id, parse_duration(body.at("by").get<std::string>(), "by"))
                       : store.reschedule(id, parse_time(body.at("to").get<std::string>(), "to"));
      if (!ok) refused(id, "is not waiting");
      if (Dispatcher* d = dispatcher.load()) d->wake();
    } else {
      throw HttpError(404, "no such action '" + records::printable(action) + "' (cancel, retry, extend)");
    }
    get_task(id, res);
  }

  // POST /api/v1/tasks/cancel|retry: {"ids": [..]} (a selection) or {"filter": {...}} (everything
  // that matches; limit: how many at most).
  void bulk(const std::string& action, const httplib::Request& req, httplib::Response& res) {
    json body = body_of(req);
    if (!body.is_object()) throw HttpError(400, "expected an object with \"ids\" or \"filter\"");
    std::size_t n = 0;
    const bool cancel = action == "cancel";
    if (body.contains("ids")) {
      const json& ids = body.at("ids");
      if (!ids.is_array()) throw HttpError(400, "ids: expected an array of task ids");
      if (ids.size() > kMaxIds) throw HttpError(413, "at most " + std::to_string(kMaxIds) + " ids per request");
      std::vector<std::int64_t> list;
      for (auto& v : ids) {
        if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) throw HttpError(400, "ids: expected positive integers");
        list.push_back(v.get<std::int64_t>());
      }
      // One transaction per call: a selection is a filter on its ids' range, checked per id.
      for (std::int64_t id : list) n += cancel ? store.cancel(id) : store.retry(id);
    } else if (body.contains("filter")) {
      const json& f = body.at("filter");
      if (!f.is_object()) throw HttpError(400, "filter: expected an object");
      ListQuery q = query_from([&](const char* name) {
        if (!f.contains(name)) return std::string();
        const json& v = f.at(name);
        return v.is_string() ? v.get<std::string>() : v.is_number_integer() ? std::to_string(v.get<std::int64_t>()) : std::string();
      });
      q.limit = f.contains("limit") ? f.at("limit").get<std::size_t>() : std::numeric_limits<std::size_t>::max();
      n = cancel ? store.cancel_matching(q) : store.retry_matching(q);
    } else {
      throw HttpError(400, "expected \"ids\" or \"filter\"");
    }
    if (Dispatcher* d = dispatcher.load(); d && !cancel) d->wake();
    send_json(res, {{"count", n}});
  }

  json node_json() {
    Dispatcher* d = dispatcher.load();
    ThreadPool* p = pool.load();
    json j = {{"owner", d ? d->owner() : std::string()}, {"host", host_name()}, {"pid", static_cast<std::int64_t>(getpid())}};
    auto ps = p ? p->stats() : Stats{};
    j["threads"] = ps.max_threads;
    j["busy"] = ps.running;
    j["queued"] = ps.queued;
    j["in_flight"] = d ? d->stats().in_flight : 0;
    j["paused"] = paused.load();
    j["started"] = format_time_precise(started);
    j["heartbeat"] = format_time_precise(std::chrono::system_clock::now());
    j["self"] = true;
    return j;
  }

  void overview(httplib::Response& res) {
    json j = {{"stats", stats_json(table_stats())}, {"runs", metrics->overview()}};
    // Queue depth: waiting tasks due now, counted up to a cap (a page of ids off the due index).
    ListQuery q;
    q.status = TaskStatus::waiting;
    q.due_before = std::chrono::system_clock::now();
    q.limit = 1000;
    std::size_t due = 0;
    store.scan(q, [&](const TaskRecord&) { return ++due, true; });
    j["due_now"] = due;
    j["due_now_capped"] = due == q.limit;
    j["daemon"] = dispatcher.load() != nullptr;
    j["node"] = node_json();
    send_json(res, j);
  }

  void metrics_text(httplib::Response& res) {
    std::string out;
    out.reserve(8192);
    auto st = table_stats();
    out += "# HELP taskpool_tasks Tasks in the table by status.\n# TYPE taskpool_tasks gauge\n";
    for (auto [name, n] : {std::pair<const char*, std::int64_t>{"waiting", st.waiting}, {"running", st.running},
                           {"done", st.done}, {"failed", st.failed}, {"cancelled", st.cancelled}})
      out += std::string("taskpool_tasks{status=\"") + name + "\"} " + std::to_string(n) + "\n";
    out += "# HELP taskpool_unacked_reports Reports not acknowledged yet.\n# TYPE taskpool_unacked_reports gauge\n";
    out += "taskpool_unacked_reports " + std::to_string(st.unacked_reports) + "\n";
    metrics->write_prometheus(out);
    Dispatcher* d = dispatcher.load();
    Dispatcher::Stats ds = d ? d->stats() : Dispatcher::Stats{};
    auto counter = [&](const char* name, const char* help, std::uint64_t v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " + std::to_string(v) + "\n";
    };
    auto gauge = [&](const char* name, const char* help, std::uint64_t v) {
      out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n" + name + " " + std::to_string(v) + "\n";
    };
    counter("taskpool_leases_lost_total", "Runs whose claim was gone when they ended (cancelled or taken over).", ds.lost_leases);
    counter("taskpool_leases_rescued_total", "Rows recovery returned to waiting (dead runner or expired lease).", ds.rescued);
    counter("taskpool_store_errors_total", "Failed store calls (dispatcher commits and recoveries, HTTP requests).",
            ds.store_errors + store_errors.load());
    ThreadPool* p = pool.load();
    auto ps = p ? p->stats() : Stats{};
    gauge("taskpool_pool_threads", "Worker threads allowed (the pool's size).", ps.max_threads);
    gauge("taskpool_pool_busy", "Worker threads running a task.", ps.running);
    gauge("taskpool_pool_queued", "Tasks queued in the pool, not started.", ps.queued);
    counter("taskpool_pool_completed_total", "Pool tasks that ran and returned.", ps.completed);
    gauge("taskpool_dispatcher_in_flight", "Claimed runs not recorded yet.", ds.in_flight);
    gauge("taskpool_paused", "1 while claiming is paused.", paused.load() ? 1 : 0);
    res.set_content(out, "text/plain; version=0.0.4; charset=utf-8");
  }

  void daemon_action(const std::string& action, const httplib::Request& req, httplib::Response& res) {
    json body = body_of(req);
    Dispatcher& d = daemon();
    if (action == "pause") {
      d.pause();
      paused = true;
      log("paused (HTTP)");
    } else if (action == "resume") {
      d.resume();
      paused = false;
      log("resumed (HTTP)");
    } else if (action == "resize") {
      ThreadPool* p = pool.load();
      if (!p) throw HttpError(409, "no pool attached");
      if (!body.contains("threads") || !body.at("threads").is_number_integer())
        throw HttpError(400, "threads: expected an integer 1.." + std::to_string(ThreadPool::max_supported_threads()));
      auto n = body.at("threads").get<std::int64_t>();
      if (n < 1 || n > static_cast<std::int64_t>(ThreadPool::max_supported_threads()))
        throw HttpError(400, "threads: expected an integer 1.." + std::to_string(ThreadPool::max_supported_threads()));
      p->resize(static_cast<std::size_t>(n), static_cast<std::size_t>(n));
      d.wake();
      log("threads: " + std::to_string(n) + " (HTTP)");
    } else {
      throw HttpError(404, "no such action '" + records::printable(action) + "' (pause, resume, resize)");
    }
    send_json(res, {{"nodes", json::array({node_json()})}});
  }

  void asset(const std::string& path, httplib::Response& res) {
    const http::Asset* a = http::find_asset(path == "/" ? "/index.html" : path);
    if (!a) {
      send_json(res, {{"error", "no such path"}}, 404);
      return;
    }
    res.set_content(reinterpret_cast<const char*>(a->data), a->size, a->type);
  }

  void routes() {
    svr.set_default_headers({
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
         "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
        {"Cache-Control", "no-store"},
    });
    svr.set_payload_max_length(opts.max_body);
    svr.set_keep_alive_max_count(10'000);
    svr.set_tcp_nodelay(true);  // a response is one write; Nagle would hold it for the client's delayed ACK
    svr.new_task_queue = [n = std::max<std::size_t>(opts.threads, 2)] { return new httplib::ThreadPool(n); };
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const bool api = req.path.rfind("/api/", 0) == 0;
      const bool metrics_path = req.path == "/metrics";
      if ((api || (metrics_path && !opts.metrics_public)) && !authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer");
        send_json(res, {{"error", "missing or wrong token (Authorization: Bearer TOKEN)"}}, 401);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;  // our own error object
      const char* what = res.status == 413 ? "request body too large" : res.status == 404 ? "no such path" : "bad request";
      if (res.status == 405) what = "method not allowed";
      send_json(res, {{"error", what}}, res.status);
    });
    svr.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      ++store_errors;
      send_json(res, {{"error", "internal error"}}, 500);
    });

    svr.Get("/api/v1/tasks", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { list_tasks(req, res); });
    });
    svr.Post("/api/v1/tasks", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { add_tasks(req, res); });
    });
    svr.Post(R"(/api/v1/tasks/(cancel|retry))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { bulk(req.matches[1], req, res); });
    });
    svr.Get(R"(/api/v1/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { get_task(parse_id(req.matches[1]), res); });
    });
    svr.Post(R"(/api/v1/tasks/([^/]+)/([a-z]+))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { task_action(parse_id(req.matches[1]), req.matches[2], req, res); });
    });
    svr.Delete(R"(/api/v1/tasks/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        auto id = parse_id(req.matches[1]);
        if (!req.body.empty()) body_of(req);
        if (!store.remove(id)) refused(id, "is running (cancel it first)");
        send_json(res, {{"deleted", id}});
      });
    });
    svr.Get("/api/v1/stats", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] { send_json(res, stats_json(store.stats())); });
    });
    svr.Get("/api/v1/overview", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] { overview(res); });
    });
    svr.Get("/api/v1/reports", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        std::size_t limit = req.has_param("limit") ? parse_count(req.get_param_value("limit"), "limit") : kMaxPage;
        if (limit == 0 || limit > kMaxPage) throw HttpError(400, "limit: expected 1.." + std::to_string(kMaxPage));
        const bool all = req.has_param("all") && req.get_param_value("all") != "0";
        json out = json::array();
        for (auto& r : store.reports(!all, limit)) out.push_back(records::to_json(r));
        send_json(res, {{"reports", out}});
      });
    });
    svr.Post("/api/v1/reports/ack", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] {
        json body = body_of(req);
        if (!body.is_object() || !body.contains("ids") || !body.at("ids").is_array())
          throw HttpError(400, "ids: expected an array of report ids");
        if (body.at("ids").size() > kMaxIds) throw HttpError(413, "at most " + std::to_string(kMaxIds) + " ids per request");
        std::vector<std::int64_t> ids;
        for (auto& v : body.at("ids")) {
          if (!v.is_number_integer()) throw HttpError(400, "ids: expected integers");
          ids.push_back(v.get<std::int64_t>());
        }
        send_json(res, {{"acked", store.ack_reports(ids)}});
      });
    });
    svr.Get("/api/v1/nodes", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] {
        // Every live node of the cluster from the nodes table; this daemon's own row with its live
        // pool figures (its heartbeat row may be seconds old, or not written yet), marked "self":
        // pause, resume and resize act on it only.
        json nodes = json::array();
        Dispatcher* d = dispatcher.load();
        bool self_listed = false;
        for (const NodeInfo& n : store.nodes(kNodeMaxAge)) {
          if (d && n.owner == d->owner()) {
            nodes.push_back(node_json());
            self_listed = true;
            continue;
          }
          nodes.push_back({{"owner", n.owner}, {"host", n.host}, {"pid", n.pid}, {"threads", n.threads}, {"busy", n.busy},
                           {"queued", n.queued}, {"in_flight", n.in_flight}, {"paused", n.paused},
                           {"started", format_time_precise(n.started)}, {"heartbeat", format_time_precise(n.heartbeat)},
                           {"self", false}});
        }
        if (d && !self_listed) nodes.push_back(node_json());
        send_json(res, {{"nodes", nodes}});
      });
    });
    svr.Post(R"(/api/v1/daemon/(pause|resume|resize))", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { daemon_action(req.matches[1], req, res); });
    });
    svr.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      guarded(res, [&] { metrics_text(res); });
    });
    svr.Get(R"(/[A-Za-z0-9_.-]*)", [this](const httplib::Request& req, httplib::Response& res) { asset(req.path, res); });
  }
};

HttpServer::HttpServer(TaskStore& store, HttpOptions opts) : impl_(std::make_unique<Impl>(store, std::move(opts))) {
  impl_->routes();
}
HttpServer::~HttpServer() { stop(); }

std::function<void(const DispatcherOptions::RunEnd&)> HttpServer::run_observer() {
  return [m = impl_->metrics](const DispatcherOptions::RunEnd& e) { m->record(e); };
}
void HttpServer::attach(Dispatcher& d, ThreadPool& pool) {
  impl_->dispatcher = &d;
  impl_->pool = &pool;
}
void HttpServer::note_paused(bool paused) { impl_->paused = paused; }

void HttpServer::start() {
  std::lock_guard lk(impl_->start_mu);
  if (impl_->thread.joinable()) return;
  auto& svr = impl_->svr;
  const std::string host = impl_->opts.host == "localhost" ? "127.0.0.1" : impl_->opts.host;
  int port = impl_->opts.port;
  if (port == 0) {
    port = svr.bind_to_any_port(host);
    if (port < 0) throw std::runtime_error("--http: cannot listen on " + host);
  } else if (!svr.bind_to_port(host, port)) {
    throw std::runtime_error("--http: cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address of this host)");
  }
  impl_->port = port;
  impl_->stats_stop = false;
  impl_->stats_thread = std::thread([this] { impl_->stats_loop(); });
  auto returned = std::make_shared<std::atomic<bool>>(false);
  impl_->thread = std::thread([this, returned] {
    impl_->svr.listen_after_bind();
    *returned = true;
  });
  // httplib's stop() does nothing until the accept loop runs: wait for it, so a stop() right
  // after start() cannot miss it and leave stop() joining a loop that never ends.
  while (!impl_->svr.is_running() && !*returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void HttpServer::stop() {
  std::lock_guard lk(impl_->start_mu);
  if (!impl_->thread.joinable()) return;
  impl_->svr.stop();
  impl_->thread.join();
  {
    std::lock_guard slk(impl_->stats_mu);
    impl_->stats_stop = true;
  }
  impl_->stats_cv.notify_all();
  impl_->stats_thread.join();
}

int HttpServer::port() const { return impl_->port; }
const std::string& HttpServer::token() const { return impl_->opts.token; }
std::string HttpServer::dashboard_url() const {
  std::string host = impl_->opts.host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(impl_->port) + "/?token=" + impl_->opts.token;
}

}  // namespace taskpool
