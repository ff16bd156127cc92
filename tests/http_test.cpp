// tests/http_test.cpp — the HTTP API over real loopback HTTP (httplib::Client) against an
// in-process HttpServer on an ephemeral port: every endpoint, filters and keyset pages, bad
// input refused with 4xx and nothing written, auth (missing, wrong, generated token), size
// limits, GET never changing anything, and /metrics parsed by the Prometheus text-format rules
// with its counters moving as tasks run.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "common/prom_text.hpp"
#include "common/store_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/dispatcher.hpp"
#include "taskpool/http.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

constexpr const char* kToken = "test-token-0123456789";

// Every API test runs on both stores (the server only sees the TaskStore seam).
class HttpApi : public taskpool::test::BackendStoreFixture {
 protected:
  void TearDown() override {
    if (server_) server_->stop();
    if (dispatcher_) dispatcher_->stop(5s);
    server_.reset();
    dispatcher_.reset();
    pool_.reset();
    BackendStoreFixture::TearDown();
  }
  // A server (and, with `daemon`, a dispatcher on a pool with handlers ok/bad) on this store.
  void serve(bool daemon = false, taskpool::HttpOptions o = {}) {
    if (o.token.empty()) o.token = kToken;
    server_ = std::make_unique<taskpool::HttpServer>(*store_, o);
    if (daemon) {
      pool_ = std::make_unique<taskpool::ThreadPool>(2);
      taskpool::DispatcherOptions d;
      d.poll_interval = 50ms;
      d.on_run_end = server_->run_observer();
      dispatcher_ = std::make_unique<taskpool::Dispatcher>(*store_, *pool_, d);
      dispatcher_->handle("ok", [](const taskpool::TaskContext&) { return std::string("fine"); });
      dispatcher_->handle("bad", [](const taskpool::TaskContext&) -> std::string { throw std::runtime_error("kaput"); });
      dispatcher_->start();
      server_->attach(*dispatcher_, *pool_);
    }
    server_->start();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_default_headers({{"Authorization", std::string("Bearer ") + kToken}});
  }
  struct Reply {
    int status = 0;
    json body;
    std::string text;
  };
  static Reply reply(const httplib::Result& r) {
    Reply out;
    if (!r) return out;
    out.status = r->status;
    out.text = r->body;
    out.body = json::parse(r->body, nullptr, false);
    return out;
  }
  Reply get(const std::string& path) { return reply(client_->Get(path.c_str())); }
  Reply post(const std::string& path, const std::string& body, const char* type = "application/json") {
    return reply(client_->Post(path.c_str(), body, type));
  }
  Reply del(const std::string& path) { return reply(client_->Delete(path.c_str())); }
  // Everything the table holds, for "nothing written" checks.
  std::string snapshot() {
    std::string s;
    for (auto& r : store_->list({.limit = 100000}))
      s += std::to_string(r.id) + std::string(to_string(r.status)) + std::to_string(r.attempts) +
           std::to_string(r.exec_time.time_since_epoch().count()) + ";";
    auto st = store_->stats();
    return s + std::to_string(st.unacked_reports);
  }
  std::int64_t add(taskpool::NewTask t) { return store_->add(t); }

  std::unique_ptr<taskpool::HttpServer> server_;
  std::unique_ptr<taskpool::ThreadPool> pool_;
  std::unique_ptr<taskpool::Dispatcher> dispatcher_;
  std::unique_ptr<httplib::Client> client_;
};

TEST_P(HttpApi, EveryApiCallNeedsTheToken) {
  serve();
  auto before = snapshot();
  httplib::Client anon("127.0.0.1", server_->port());
  for (auto* path : {"/api/v1/stats", "/api/v1/tasks", "/api/v1/tasks/1", "/api/v1/reports", "/api/v1/nodes", "/metrics"}) {
    auto r = reply(anon.Get(path));
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_TRUE(r.body.contains("error")) << path;
  }
  EXPECT_EQ(reply(anon.Post("/api/v1/tasks", R"({"task_type": "ok"})", "application/json")).status, 401);
  httplib::Client wrong("127.0.0.1", server_->port());
  wrong.set_default_headers({{"Authorization", "Bearer test-token-0123456788"}});
  EXPECT_EQ(reply(wrong.Post("/api/v1/tasks", R"({"task_type": "ok"})", "application/json")).status, 401);
  wrong.set_default_headers({{"Authorization", std::string("Bearer ") + kToken + "x"}});
  EXPECT_EQ(reply(wrong.Get("/api/v1/stats")).status, 401);
  wrong.set_default_headers({{"Authorization", kToken}});  // no "Bearer "
  EXPECT_EQ(reply(wrong.Get("/api/v1/stats")).status, 401);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(get("/api/v1/stats").status, 200);
  // The dashboard's files hold no data and need no token.
  EXPECT_EQ(reply(anon.Get("/")).status, 200);
}

TEST_P(HttpApi, AGeneratedTokenIsRandomAndPrintedInTheDashboardUrl) {
  taskpool::HttpServer a(*store_, {}), b(*store_, {});
  EXPECT_EQ(a.token().size(), 64u);
  EXPECT_NE(a.token(), b.token());
  a.start();
  EXPECT_EQ(a.dashboard_url(), "http://127.0.0.1:" + std::to_string(a.port()) + "/?token=" + a.token());
  httplib::Client c("127.0.0.1", a.port());
  EXPECT_EQ(c.Get("/api/v1/stats")->status, 401);
  c.set_default_headers({{"Authorization", "Bearer " + a.token()}});
  EXPECT_EQ(c.Get("/api/v1/stats")->status, 200);
  a.stop();
}

TEST_P(HttpApi, AnotherAddressThanLoopbackNeedsAnExplicitToken) {
  EXPECT_THROW(taskpool::HttpServer(*store_, {.host = "0.0.0.0"}), std::invalid_argument);
  EXPECT_NO_THROW(taskpool::HttpServer(*store_, {.host = "0.0.0.0", .token = "t"}));
  EXPECT_TRUE(taskpool::is_loopback("127.0.0.1"));
  EXPECT_TRUE(taskpool::is_loopback("::1"));
  EXPECT_FALSE(taskpool::is_loopback("10.0.0.1"));
}

TEST_P(HttpApi, MetricsCanBePublic) {
  serve(false, {.metrics_public = true});
  httplib::Client anon("127.0.0.1", server_->port());
  EXPECT_EQ(anon.Get("/metrics")->status, 200);
  EXPECT_EQ(anon.Get("/api/v1/stats")->status, 401);
}

TEST_P(HttpApi, AddsOneRecordOrABatch) {
  serve();
  auto one = post("/api/v1/tasks", R"({"creator_id": 123, "task_type": "memo", "payload": {"text": "hi"}})");
  ASSERT_EQ(one.status, 201) << one.text;
  auto id = one.body.at("id").get<std::int64_t>();
  EXPECT_EQ(store_->get(id)->creator_id, "123");
  auto batch = post("/api/v1/tasks", R"([{"task_type": "a"}, {"task_type": "b"}, {"task_type": "c"}])");
  ASSERT_EQ(batch.status, 201) << batch.text;
  ASSERT_EQ(batch.body.at("ids").size(), 3u);
  EXPECT_EQ(store_->get(batch.body["ids"][2].get<std::int64_t>())->task_type, "c");
  auto got = get("/api/v1/tasks/" + std::to_string(id));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body["task"]["payload"]["text"], "hi");
  EXPECT_TRUE(got.body["reports"].is_array());
}

TEST_P(HttpApi, BadInputIsRefusedWithTheCommandsMessageAndNothingIsWritten) {
  serve();
  add({.task_type = "seed"});
  auto before = snapshot();
  struct Case {
    std::string method, path, body, type;
    int status;
    std::string message;  // a part of the error
  };
  std::vector<Case> cases = {
      {"POST", "/api/v1/tasks", R"({"task_type": "x", "task_level": 42})", "application/json", 400, "task_level"},
      {"POST", "/api/v1/tasks", R"([{"task_type": "ok"}, {"task_type": "x", "max_attempts": 0}])", "application/json", 400, "max_attempts"},
      {"POST", "/api/v1/tasks", R"({"task_type": "exec", "payload": {"argv": []}})", "application/json", 400, "exec: "},
      {"POST", "/api/v1/tasks", R"({"task_type": )", "application/json", 400, "JSON"},
      {"POST", "/api/v1/tasks", R"({"task_type": "x"})", "application/x-www-form-urlencoded", 415, "JSON body"},
      {"POST", "/api/v1/tasks", R"({"task_type": "x"})", "text/plain", 415, "JSON body"},
      {"POST", "/api/v1/tasks/abc/cancel", "{}", "application/json", 400, "bad task id 'abc'"},
      {"POST", "/api/v1/tasks/999/cancel", "{}", "application/json", 404, "no task 999"},
      {"POST", "/api/v1/tasks/1/retry", "{}", "application/json", 409, "task 1 is not done, failed or cancelled"},
      {"POST", "/api/v1/tasks/1/extend", R"({"by": "soon"})", "application/json", 400, "by"},
      {"POST", "/api/v1/tasks/1/extend", "{}", "application/json", 400, "extend needs"},
      {"POST", "/api/v1/tasks/1/frobnicate", "{}", "application/json", 404, "no such action"},
      {"POST", "/api/v1/tasks/cancel", R"({"filter": {"status": "sleeping"}})", "application/json", 400, "unknown status 'sleeping'"},
      {"POST", "/api/v1/tasks/cancel", R"({"ids": ["1"]})", "application/json", 400, "ids"},
      {"POST", "/api/v1/tasks/retry", R"({})", "application/json", 400, "expected"},
      {"POST", "/api/v1/reports/ack", R"({"ids": "all"})", "application/json", 400, "ids"},
      {"POST", "/api/v1/daemon/pause", "{}", "application/json", 409, "runs no tasks"},
      {"GET", "/api/v1/tasks?status=sleeping", "", "", 400, "unknown status 'sleeping'"},
      {"GET", "/api/v1/tasks?limit=0", "", "", 400, "limit"},
      {"GET", "/api/v1/tasks?limit=abc", "", "", 400, "limit"},
      {"GET", "/api/v1/tasks?due_before=yesterday", "", "", 400, "due_before"},
      {"GET", "/api/v1/tasks?order=sideways", "", "", 400, "order"},
      {"GET", "/api/v1/tasks/999", "", "", 404, "no task 999"},
      {"GET", "/api/v1/tasks/-1", "", "", 400, "bad task id"},
      {"GET", "/api/v1/nope", "", "", 404, ""},
  };
  for (auto& c : cases) {
    Reply r = c.method == "GET" ? get(c.path) : post(c.path, c.body, c.type.c_str());
    EXPECT_EQ(r.status, c.status) << c.method << " " << c.path << " " << c.body << " -> " << r.text;
    ASSERT_TRUE(r.body.is_object() && r.body.contains("error")) << c.path << " -> " << r.text;
    EXPECT_NE(r.body["error"].get<std::string>().find(c.message), std::string::npos) << c.path << " -> " << r.text;
  }
  EXPECT_EQ(snapshot(), before);
}

TEST_P(HttpApi, RequestBodiesAreCapped) {
  serve(false, {.max_body = 4096});
  auto before = snapshot();
  std::string big = R"({"task_type": "x", "payload": {"blob": ")" + std::string(8192, 'a') + "\"}}";
  auto r = post("/api/v1/tasks", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(snapshot(), before);
  EXPECT_EQ(post("/api/v1/tasks", R"({"task_type": "x"})").status, 201);
}

TEST_P(HttpApi, ListsWithFiltersAndKeysetPages) {
  serve();
  std::vector<std::int64_t> ids;
  for (int i = 0; i < 12; ++i)
    ids.push_back(add({.creator_id = i % 3 == 0 ? "alice" : "bob", .task_type = i % 2 ? "odd" : "even",
                       .payload = i == 5 ? R"({"n": "needle"})" : "{}"}));
  auto page_ids = [](const Reply& r) {
    std::vector<std::int64_t> out;
    for (auto& t : r.body["tasks"]) out.push_back(t["id"].get<std::int64_t>());
    return out;
  };
  EXPECT_EQ(page_ids(get("/api/v1/tasks?creator=alice")), (std::vector<std::int64_t>{ids[0], ids[3], ids[6], ids[9]}));
  EXPECT_EQ(page_ids(get("/api/v1/tasks?text=needle")), (std::vector<std::int64_t>{ids[5]}));
  EXPECT_EQ(page_ids(get("/api/v1/tasks?handler=odd&creator=alice")), (std::vector<std::int64_t>{ids[3], ids[9]}));
  EXPECT_TRUE(page_ids(get("/api/v1/tasks?status=done")).empty());
  // Pages of 5, oldest first, following the server's cursor.
  std::vector<std::int64_t> seen;
  std::string path = "/api/v1/tasks?limit=5";
  for (int guard = 0; guard < 10; ++guard) {
    auto r = get(path);
    ASSERT_EQ(r.status, 200);
    auto p = page_ids(r);
    seen.insert(seen.end(), p.begin(), p.end());
    if (r.body["next"].is_null()) break;
    path = "/api/v1/tasks?limit=5&after_id=" + std::to_string(r.body["next"]["after_id"].get<std::int64_t>());
  }
  EXPECT_EQ(seen, ids);
  auto newest = get("/api/v1/tasks?order=newest&limit=2");
  EXPECT_EQ(page_ids(newest), (std::vector<std::int64_t>{ids[11], ids[10]}));
  auto next = get("/api/v1/tasks?order=newest&limit=2&before_id=" + std::to_string(newest.body["next"]["before_id"].get<std::int64_t>()));
  EXPECT_EQ(page_ids(next), (std::vector<std::int64_t>{ids[9], ids[8]}));
}

TEST_P(HttpApi, CancelRetryExtendAndDeleteOneTask) {
  serve();
  auto later = std::chrono::system_clock::now() + 1h;
  auto id = add({.task_type = "t", .exec_time = later});
  const std::string base = "/api/v1/tasks/" + std::to_string(id);
  auto ext = post(base + "/extend", R"({"by": "60s"})");
  ASSERT_EQ(ext.status, 200) << ext.text;
  EXPECT_EQ(store_->get(id)->exec_time, std::chrono::time_point_cast<std::chrono::milliseconds>(later) + 60s);
  EXPECT_EQ(post(base + "/extend", R"({"to": "2100-01-01 00:00:00Z"})").status, 200);
  auto c = post(base + "/cancel", "");
  ASSERT_EQ(c.status, 200) << c.text;
  EXPECT_EQ(c.body["task"]["task_status"], "cancelled");
  auto again = post(base + "/cancel", "{}");
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(again.body["error"], "task " + std::to_string(id) + " is not waiting or running");
  auto r = post(base + "/retry", "{}");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body["task"]["task_status"], "waiting");
  // Delete: a running task is refused, a waiting one goes with its reports.
  auto claims = store_->claim_due({.owner = "someone", .limit = 10, .lease = 30s});
  ASSERT_EQ(claims.size(), 1u);
  EXPECT_EQ(del(base).status, 409);
  ASSERT_TRUE(store_->release(claims[0], false));
  auto d = del(base);
  EXPECT_EQ(d.status, 200) << d.text;
  EXPECT_EQ(get(base).status, 404);
  EXPECT_EQ(del(base).status, 404);
}

TEST_P(HttpApi, BulkRetryAndCancelBySelectionAndByFilter) {
  serve();
  auto later = std::chrono::system_clock::now() + 1h;
  std::vector<std::int64_t> a, b;
  for (int i = 0; i < 4; ++i) a.push_back(add({.creator_id = "a", .task_type = "t", .exec_time = later}));
  for (int i = 0; i < 3; ++i) b.push_back(add({.creator_id = "b", .task_type = "t", .exec_time = later}));
  auto sel = post("/api/v1/tasks/cancel", json({{"ids", {a[0], a[1]}}}).dump());
  ASSERT_EQ(sel.status, 200) << sel.text;
  EXPECT_EQ(sel.body["count"], 2);
  auto all = post("/api/v1/tasks/cancel", R"({"filter": {"creator": "b"}})");
  EXPECT_EQ(all.body["count"], 3);
  EXPECT_EQ(store_->get(a[2])->status, taskpool::TaskStatus::waiting);
  auto retried = post("/api/v1/tasks/retry", R"({"filter": {"status": "cancelled"}})");
  EXPECT_EQ(retried.body["count"], 5);
  for (auto id : b) EXPECT_EQ(store_->get(id)->status, taskpool::TaskStatus::waiting);
}

TEST_P(HttpApi, ReportsListAndAck) {
  serve();
  auto id = add({.task_type = "t"});
  ASSERT_TRUE(store_->cancel(id));  // writes a report
  auto r = get("/api/v1/reports");
  ASSERT_EQ(r.status, 200);
  ASSERT_EQ(r.body["reports"].size(), 1u);
  auto rid = r.body["reports"][0]["id"].get<std::int64_t>();
  auto ack = post("/api/v1/reports/ack", json({{"ids", {rid}}}).dump());
  EXPECT_EQ(ack.body["acked"], 1);
  EXPECT_TRUE(get("/api/v1/reports").body["reports"].empty());
  EXPECT_EQ(get("/api/v1/reports?all=1").body["reports"].size(), 1u);
  auto stats = get("/api/v1/stats");
  EXPECT_EQ(stats.body["cancelled"], 1);
  EXPECT_EQ(stats.body["unacked_reports"], 0);
}

TEST_P(HttpApi, GetNeverChangesState) {
  serve(true);
  dispatcher_->pause();
  server_->note_paused(true);
  auto later = std::chrono::system_clock::now() + 1h;
  auto w = add({.task_type = "t", .exec_time = later});
  auto c = add({.task_type = "t", .exec_time = later});
  ASSERT_TRUE(store_->cancel(c));
  auto before = snapshot();
  for (const std::string& path : std::vector<std::string>{"/api/v1/tasks", "/api/v1/tasks?status=waiting", "/api/v1/tasks/" + std::to_string(w),
                           "/api/v1/tasks/" + std::to_string(w) + "/cancel", "/api/v1/tasks/" + std::to_string(c) + "/retry",
                           std::string("/api/v1/tasks/cancel"), std::string("/api/v1/tasks/retry?filter=all"),
                           std::string("/api/v1/reports"), std::string("/api/v1/reports/ack?ids=1"), std::string("/api/v1/stats"),
                           std::string("/api/v1/overview"), std::string("/api/v1/nodes"), std::string("/api/v1/daemon/resume"),
                           std::string("/metrics"), std::string("/")}) {
    auto r = get(path);
    EXPECT_NE(r.status, 0) << path;
  }
  EXPECT_EQ(snapshot(), before);
  EXPECT_TRUE(get("/api/v1/nodes").body["nodes"][0]["paused"].get<bool>());
}

TEST_P(HttpApi, NodesPauseResumeAndResizeThisDaemon) {
  serve(true);
  auto n = get("/api/v1/nodes");
  ASSERT_EQ(n.status, 200);
  ASSERT_EQ(n.body["nodes"].size(), 1u);
  auto node = n.body["nodes"][0];
  for (auto* k : {"owner", "host", "pid", "threads", "busy", "queued", "in_flight", "paused", "started", "heartbeat"})
    EXPECT_TRUE(node.contains(k)) << k;
  EXPECT_EQ(node["owner"], dispatcher_->owner());
  EXPECT_EQ(node["threads"], 2);
  EXPECT_EQ(post("/api/v1/daemon/pause", "{}").body["nodes"][0]["paused"], true);
  // Paused: a due task is not claimed.
  auto id = add({.task_type = "ok"});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(store_->get(id)->status, taskpool::TaskStatus::waiting);
  EXPECT_EQ(post("/api/v1/daemon/resume", "{}").body["nodes"][0]["paused"], false);
  EXPECT_TRUE(taskpool::test::eventually([&] { return store_->get(id)->status == taskpool::TaskStatus::done; }));
  auto rs = post("/api/v1/daemon/resize", R"({"threads": 3})");
  ASSERT_EQ(rs.status, 200) << rs.text;
  EXPECT_EQ(rs.body["nodes"][0]["threads"], 3);
  EXPECT_EQ(pool_->stats().max_threads, 3u);
  EXPECT_EQ(post("/api/v1/daemon/resize", R"({"threads": 0})").status, 400);
  EXPECT_EQ(post("/api/v1/daemon/resize", R"({"threads": "many"})").status, 400);
}

// Invariant: /api/v1/nodes lists every live node of the nodes table (another daemon's heartbeat
// row too, marked self: false) and this daemon once, with its live figures and self: true; a row
// older than the max age is not listed, and not deleted either (a GET writes nothing).
TEST_P(HttpApi, NodesListsTheClusterAndMarksThisDaemon) {
  serve(true);
  store_->heartbeat({.owner = "other-host.1:77:1:x", .host = "other-host", .pid = 77, .threads = 8, .busy = 3});
  store_->heartbeat({.owner = "gone.1:78:1:x", .host = "gone", .pid = 78});
  sql("UPDATE nodes SET heartbeat = heartbeat - 120000 WHERE owner = 'gone.1:78:1:x'");
  auto n = get("/api/v1/nodes");
  EXPECT_EQ(scalar("SELECT count(*) FROM nodes WHERE owner = 'gone.1:78:1:x'"), 1);
  ASSERT_EQ(n.status, 200);
  ASSERT_EQ(n.body["nodes"].size(), 2u) << n.text;
  int self = 0;
  for (const auto& node : n.body["nodes"]) {
    if (node["self"].get<bool>()) {
      ++self;
      EXPECT_EQ(node["owner"], dispatcher_->owner());
    } else {
      EXPECT_EQ(node["host"], "other-host");
      EXPECT_EQ(node["threads"], 8);
      EXPECT_EQ(node["busy"], 3);
    }
  }
  EXPECT_EQ(self, 1);
}

TEST_P(HttpApi, AWatcherListsNoNodesAndRefusesDaemonCalls) {
  serve(false);
  EXPECT_TRUE(get("/api/v1/nodes").body["nodes"].empty());
  for (auto* a : {"pause", "resume", "resize"}) EXPECT_EQ(post(std::string("/api/v1/daemon/") + a, R"({"threads": 2})").status, 409);
}

// Invariant: after N runs end, the runs counter of their handler and outcome says N, the run
// histograms count every run, and the status gauges agree with the table.
TEST_P(HttpApi, MetricsParseAndCountersMoveAsTasksRun) {
  serve(true);
  auto first = taskpool::test::parse_prometheus(get("/metrics").text);
  EXPECT_TRUE(first.errors.empty()) << ::testing::PrintToString(first.errors);
  EXPECT_EQ(first.value("taskpool_tasks{status=\"waiting\"}"), 0);
  EXPECT_EQ(first.value("taskpool_pool_threads"), 2);
  for (int i = 0; i < 5; ++i) add({.task_type = "ok"});
  for (int i = 0; i < 2; ++i) add({.task_type = "bad"});
  ASSERT_TRUE(taskpool::test::eventually([&] {
    auto s = store_->stats();
    return s.done == 5 && s.failed == 2;
  }));
  // Outcomes are counted right after they are recorded, and the status gauges come from a
  // snapshot refreshed every 2 s while scraped: poll the scrape until it shows them.
  taskpool::test::PromScrape m;
  ASSERT_TRUE(taskpool::test::eventually([&] {
    m = taskpool::test::parse_prometheus(get("/metrics").text);
    return m.value("taskpool_runs_total{handler=\"bad\",outcome=\"failed\"}", 0) == 2 &&
           m.value("taskpool_runs_total{handler=\"ok\",outcome=\"done\"}", 0) == 5 &&
           m.value("taskpool_tasks{status=\"done\"}", 0) == 5;
  }));
  EXPECT_TRUE(m.errors.empty()) << ::testing::PrintToString(m.errors);
  EXPECT_EQ(m.types["taskpool_runs_total"], "counter");
  EXPECT_EQ(m.types["taskpool_run_duration_seconds"], "histogram");
  EXPECT_EQ(m.value("taskpool_run_duration_seconds_count"), 7);
  EXPECT_EQ(m.value("taskpool_start_delay_seconds_count"), 7);
  EXPECT_EQ(m.value("taskpool_tasks{status=\"done\"}"), 5);
  EXPECT_EQ(m.value("taskpool_tasks{status=\"failed\"}"), 2);
  EXPECT_GE(m.value("taskpool_pool_completed_total"), 7);
  for (auto* name : {"taskpool_leases_lost_total", "taskpool_leases_rescued_total", "taskpool_store_errors_total",
                     "taskpool_pool_busy", "taskpool_pool_queued"})
    EXPECT_FALSE(std::isnan(m.value(name))) << name;
  // The overview carries the same runs.
  auto o = get("/api/v1/overview");
  EXPECT_EQ(o.body["runs"]["last_hour"]["done"], 5);
  EXPECT_EQ(o.body["runs"]["last_hour"]["failed"], 2);
  EXPECT_FALSE(o.body["runs"]["run_time"]["p50"].is_null());
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpApi, ::testing::Values(taskpool::test::Backend::sqlite, taskpool::test::Backend::postgres),
                         taskpool::test::backend_name);

TEST(PromText, TheCheckerRefusesWhatTheFormatForbids) {
  using taskpool::test::parse_prometheus;
  EXPECT_TRUE(parse_prometheus("# TYPE a counter\na 1\n").errors.empty());
  EXPECT_FALSE(parse_prometheus("a 1\n").errors.empty());                                   // no TYPE
  EXPECT_FALSE(parse_prometheus("# TYPE a counter\na{x=\"\\q\"} 1\n").errors.empty());      // bad escape
  EXPECT_FALSE(parse_prometheus("# TYPE a counter\na one\n").errors.empty());               // bad value
  EXPECT_FALSE(parse_prometheus("# TYPE a counter\na 1\na 2\n").errors.empty());            // duplicate
  EXPECT_FALSE(parse_prometheus("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 0\n")
                   .errors.empty());  // not cumulative
}

TEST_P(HttpApi, ServesTheEmbeddedDashboardWithSecurityHeadersAndNothingElse) {
  serve();
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<script src=\"/app.js\""), std::string::npos);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(page->get_header_value("Referrer-Policy"), "no-referrer");
  auto js = client_->Get("/app.js");
  EXPECT_EQ(js->status, 200);
  EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
  EXPECT_NE(js->body.find("textContent"), std::string::npos);
  for (auto* p : {"/../CMakeLists.txt", "/%2e%2e/CMakeLists.txt", "/web/app.js", "/..%2fCMakeLists.txt", "/etc/passwd", "/app.js/"})
    EXPECT_EQ(client_->Get(p)->status, 404) << p;
}

}  // namespace
