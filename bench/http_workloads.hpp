// bench/http_workloads.hpp — the HTTP API (src/http) on a real loopback socket: adding tasks by
// POST (one per request on a keep-alive connection, and batches of 100), a filtered page of the
// task list with 1M rows in the table, and a /metrics scrape with 1M rows. taskpool only.
#pragma once

#include <httplib.h>

#include <algorithm>
#include <memory>

#include "store_workloads.hpp"
#include "taskpool/http.hpp"

namespace bench {

struct HttpFixture {
  TempDb db;
  std::unique_ptr<taskpool::TaskStore> store = taskpool::open_sqlite_store(db.path());
  std::unique_ptr<taskpool::HttpServer> server;
  std::unique_ptr<httplib::Client> client;
  HttpFixture() {
    server = std::make_unique<taskpool::HttpServer>(*store, taskpool::HttpOptions{.token = "bench"});
    server->start();
    client = std::make_unique<httplib::Client>("127.0.0.1", server->port());
    client->set_keep_alive(true);
    client->set_tcp_nodelay(true);
    client->set_default_headers({{"Authorization", "Bearer bench"}});
  }
  // rows tasks: 1% failed, a third done, the rest waiting (written straight through the store).
  void fill(std::size_t rows) {
    std::vector<taskpool::NewTask> batch(10'000, noop_task());
    for (std::size_t n = 0; n < rows; n += batch.size()) store->add_batch(batch);
    // Finished rows: cancel a spread of them (cancel_matching in id ranges), then fail 1%.
    const std::int64_t total = static_cast<std::int64_t>(rows);
    for (std::int64_t at = 0; at < total; at += 3000)
      store->cancel_matching({.after_id = at, .limit = 1000});
  }
};

// Median ms of `reps` calls of f.
template <class F>
double median_ms(std::size_t reps, F&& f) {
  std::vector<double> ms;
  for (std::size_t i = 0; i < reps; ++i) {
    auto t0 = clk::now();
    f();
    ms.push_back(ns_since(t0) / 1e6);
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// tasks/s added by POST /api/v1/tasks, `per_request` records a request, one keep-alive connection.
inline Figure http_add(std::size_t n, std::size_t per_request) {
  HttpFixture h;
  std::string one = R"({"creator_id": "bench", "task_type": "noop", "payload": {"n": 1}})";
  std::string body = one;
  if (per_request > 1) {
    body = "[";
    for (std::size_t i = 0; i < per_request; ++i) body += (i ? "," : "") + one;
    body += "]";
  }
  auto t0 = clk::now();
  for (std::size_t done = 0; done < n; done += per_request) {
    auto r = h.client->Post("/api/v1/tasks", body, "application/json");
    if (!r || r->status != 201) throw std::runtime_error("http_add: POST failed");
  }
  return {static_cast<double>(n) / (ns_since(t0) / 1e9)};
}

// ms for GET /api/v1/tasks?status=...&order=newest&limit=50 with `rows` in the table (a page of
// cancelled tasks from the middle of the table, by the keyset cursor).
inline Figure http_list(std::size_t rows) {
  HttpFixture h;
  h.fill(rows);
  const std::string path = "/api/v1/tasks?status=cancelled&order=newest&limit=50&before_id=" + std::to_string(rows / 2);
  return {median_ms(50, [&] {
    auto r = h.client->Get(path.c_str());
    if (!r || r->status != 200 || r->body.size() < 1000) throw std::runtime_error("http_list: GET failed");
  })};
}

// ms for GET /metrics with `rows` in the table.
inline Figure metrics_scrape(std::size_t rows) {
  HttpFixture h;
  h.fill(rows);
  return {median_ms(20, [&] {
    auto r = h.client->Get("/metrics");
    if (!r || r->status != 200) throw std::runtime_error("metrics_scrape: GET failed");
  })};
}

}  // namespace bench
