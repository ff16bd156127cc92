// taskpool/http.hpp — the HTTP side of the daemon: the JSON API under /api/v1/, the dashboard
// (GET /, its files embedded in the binary) and Prometheus metrics (GET /metrics), on any
// TaskStore. docs/http.md is the reference for every endpoint.
//
//   taskpool::HttpOptions o;
//   o.port = 8080;                        // loopback by default; another address needs o.token
//   taskpool::HttpServer http(*store, o);
//   dispatcher_opts.on_run_end = http.run_observer();   // run metrics (before the Dispatcher exists)
//   taskpool::Dispatcher d(*store, pool, dispatcher_opts);
//   http.attach(d, pool);                 // pause/resume/resize and pool figures; without it the
//   http.start();                         // server is a watcher: those calls answer 409
//   std::puts(http.dashboard_url().c_str());
//
// Security: every /api/v1/ call (and /metrics unless metrics_public) needs
// `Authorization: Bearer TOKEN`, compared in constant time; without a configured token the
// server makes a random one (as Jupyter does). State changes only by POST/DELETE whose body is
// JSON (Content-Type: application/json); GET never changes anything.
//
// Thread-safety: all members may be called from any thread; requests are served on the
// server's own threads. Blocking: start() binds and returns; stop() waits for requests in
// progress.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "taskpool/dispatcher.hpp"
#include "taskpool/store.hpp"
#include "taskpool/thread_pool.hpp"

namespace taskpool {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 0;                 // 0: an ephemeral port (port() tells which)
  std::string token;            // "": generated (32 random bytes, hex)
  bool metrics_public = false;  // GET /metrics without the token
  std::size_t max_body = 16u << 20;  // bytes; larger requests get 413
  std::size_t threads = 4;           // request threads
  std::function<void(const std::string&)> log;  // one line per notable event; default: none
};

// Whether `host` is a loopback address ("127.x.y.z", "::1", "localhost").
bool is_loopback(const std::string& host);

class HttpServer {
 public:
  // Throws std::invalid_argument for a non-loopback host without a token, or a bad port.
  HttpServer(TaskStore& store, HttpOptions opts);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // For DispatcherOptions::on_run_end: counts runs, durations and start delays.
  std::function<void(const DispatcherOptions::RunEnd&)> run_observer();
  // The daemon this server steers (pause/resume/resize) and reports (pool figures, node).
  void attach(Dispatcher& d, ThreadPool& pool);
  // Tells the server that claiming was paused or resumed by other means (a signal).
  void note_paused(bool paused);

  // Binds host:port and serves on background threads. Throws std::runtime_error when the
  // address cannot be bound.
  void start();
  void stop();
  int port() const;
  const std::string& token() const;
  // "http://HOST:PORT/?token=TOKEN"
  std::string dashboard_url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace taskpool
