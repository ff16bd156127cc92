// src/store/dispatcher.cpp — see taskpool/dispatcher.hpp.
//
// Design note. One claim-loop thread per Dispatcher; runs execute on the ThreadPool. mu guards
// the handler map, the in-flight map and the flags; store calls are made without holding it.
// A claimed task is "in flight" from the claim until its outcome is recorded (or it is released);
// the loop never holds more than `batch` in flight, so claimed rows do not wait in the pool's
// queue for long while their lease runs. Every in-flight row's lease is renewed every lease/3;
// a failed renewal means another runner took the task over (our lease had expired), so the run
// is stop-requested and its outcome is refused by the store.
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "taskpool/dispatcher.hpp"

namespace taskpool {

struct Dispatcher::Impl : std::enable_shared_from_this<Dispatcher::Impl> {
  struct Flight {
    TaskRecord rec;
    std::stop_source stop;
    bool started = false;  // guarded by Impl::mu
  };

  Impl(TaskStore& s, ThreadPool& p, DispatcherOptions o) : store(s), pool(p), opts(std::move(o)) {
    if (opts.owner.empty()) {
      char host[256] = {};
      gethostname(host, sizeof host - 1);
      std::random_device rd;
      char suffix[16];
      std::snprintf(suffix, sizeof suffix, "%08x", rd());
      opts.owner = std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
    }
    if (opts.batch == 0) throw std::invalid_argument("taskpool::Dispatcher: batch must be at least 1");
    if (opts.lease.count() <= 0) throw std::invalid_argument("taskpool::Dispatcher: lease must be positive");
  }

  void log(const std::string& line) {
    if (opts.log) {
      try {
        opts.log(line);
      } catch (...) {
      }
    }
  }

  void loop() {
    using clk = std::chrono::steady_clock;
    std::uint64_t last_counter = 0;
    std::optional<wall_time> due;  // cached earliest exec_time among waiting rows
    bool due_known = false;
    auto next_renew = clk::now() + opts.lease / 3;
    auto next_recover = clk::now() + opts.lease;
    std::unique_lock lk(mu);
    while (!stopping || !flights.empty()) {
      const bool claiming = !stopping && !paused;
      const std::size_t cap = claiming && flights.size() < opts.batch ? opts.batch - flights.size() : 0;
      const bool due_now = !due_known || (due && *due <= std::chrono::system_clock::now());
      bool full_batch = false;
      if (cap > 0 && (due_now || woken)) {
        woken = false;
        lk.unlock();
        std::vector<TaskRecord> got;
        try {
          got = store.claim_due(opts.owner, cap, opts.lease);
        } catch (const std::exception& e) {
          log(std::string("claim failed: ") + e.what());
        }
        lk.lock();
        due_known = false;
        full_batch = got.size() == cap;
        for (TaskRecord& r : got) launch_locked(std::move(r));
      }
      auto now = clk::now();
      if (now >= next_renew) {
        renew_locked(lk);
        next_renew = clk::now() + opts.lease / 3;
      }
      if (now >= next_recover && !stopping) {
        lk.unlock();
        try {
          if (std::size_t n = store.recover_expired()) {
            log("recovered " + std::to_string(n) + " task(s) with expired leases");
            due_known = false;
          }
        } catch (const std::exception& e) {
          log(std::string("recovery failed: ") + e.what());
        }
        lk.lock();
        next_recover = clk::now() + opts.lease;
      }
      if (full_batch) continue;  // more may be due right now
      // Learn the next due time; re-read only if the database changed.
      lk.unlock();
      try {
        std::uint64_t counter = store.change_counter();
        if (!due_known || counter != last_counter) {
          due = store.next_due();
          due_known = true;
          last_counter = counter;
        }
      } catch (const std::exception& e) {
        log(std::string("store check failed: ") + e.what());
      }
      lk.lock();
      auto deadline = std::min({clk::now() + opts.poll_interval, next_renew, next_recover});
      if (due && !stopping && !paused && flights.size() < opts.batch) {
        auto until = *due - std::chrono::system_clock::now();
        if (until <= std::chrono::nanoseconds::zero()) continue;  // due now: claim
        deadline = std::min(deadline, clk::now() + std::chrono::ceil<clk::duration>(until));
      }
      cv.wait_until(lk, deadline, [&] { return woken || (stopping && flights.empty()); });
    }
  }

  void launch_locked(TaskRecord r) {
    auto f = std::make_shared<Flight>();
    f->rec = std::move(r);
    flights[f->rec.id] = f;
    ++st.claimed;
    try {
      pool.post(Priority{f->rec.task_level}, [self = shared_from_this(), f] { self->run(f); });
    } catch (const std::exception& e) {
      flights.erase(f->rec.id);
      log("task " + std::to_string(f->rec.id) + " released: " + e.what());
      try {
        store.release(f->rec, opts.owner);
      } catch (...) {
      }
    }
  }

  void renew_locked(std::unique_lock<std::mutex>& lk) {
    std::vector<std::shared_ptr<Flight>> fs;
    for (auto& [id, f] : flights) fs.push_back(f);
    lk.unlock();
    for (auto& f : fs) {
      bool ok = false;
      try {
        ok = store.renew_lease(f->rec.id, opts.owner, opts.lease);
      } catch (const std::exception& e) {
        log(std::string("lease renewal failed: ") + e.what());
        continue;
      }
      if (!ok) f->stop.request_stop();  // another runner owns it now
    }
    lk.lock();
  }

  void run(const std::shared_ptr<Flight>& f) {
    Handler h;
    {
      std::lock_guard lk(mu);
      if (stopping) {  // claimed but not started: give it back
        flights.erase(f->rec.id);
        cv.notify_all();
        try {
          store.release(f->rec, opts.owner);
        } catch (...) {
        }
        return;
      }
      f->started = true;
      auto it = handlers.find(f->rec.handler());
      if (it != handlers.end()) h = it->second;
    }
    RunResult res;
    auto t0 = std::chrono::steady_clock::now();
    if (!h) {
      res.ok = false;
      res.retryable = false;
      res.error = "no handler registered for '" + f->rec.handler() + "'";
    } else {
      try {
        res.result = h(TaskContext{f->rec, f->stop.get_token()});
      } catch (const std::exception& e) {
        res.ok = false;
        res.error = e.what();
      } catch (...) {
        res.ok = false;
        res.error = "non-standard exception";
      }
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    // Group commit: queue the outcome; whoever finds no flush running records everything queued
    // in one transaction (one write transaction per task would cap throughput at the commit rate).
    {
      std::lock_guard lk(mu);
      done.push_back({f, std::move(res), ms});
      if (flushing) return;
      flushing = true;
    }
    flush();
  }

  struct Done {
    std::shared_ptr<Flight> flight;
    RunResult result;
    long long ms;
  };

  void flush() {
    for (;;) {
      std::vector<Done> batch;
      {
        std::lock_guard lk(mu);
        batch.swap(done);
        if (batch.empty()) {
          flushing = false;
          return;
        }
      }
      std::vector<TaskStore::Completion> items;
      items.reserve(batch.size());
      for (auto& d : batch) items.push_back({&d.flight->rec, d.result});
      std::vector<bool> recorded(batch.size(), false);
      try {
        recorded = store.complete_batch(items, opts.owner, opts.retry);
      } catch (const std::exception& e) {
        log(std::string("recording outcomes failed: ") + e.what());
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& d = batch[i];
        if (recorded[i] && opts.on_report) {
          try {
            opts.on_report(d.flight->rec, d.result);
          } catch (...) {
          }
        }
        if (opts.log)
          log("task " + std::to_string(d.flight->rec.id) + " " + d.flight->rec.handler() + " " +
              (!recorded[i] ? "lost its lease" : d.result.ok ? "done" : "failed: " + d.result.error) + " in " +
              std::to_string(d.ms) + " ms");
      }
      std::lock_guard lk(mu);
      for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!recorded[i]) {
          ++st.lost_leases;
        } else if (batch[i].result.ok) {
          ++st.succeeded;
        } else {
          ++st.failed;
        }
        flights.erase(batch[i].flight->rec.id);
      }
      woken = true;  // room for more claims
      cv.notify_all();
    }
  }

  TaskStore& store;
  ThreadPool& pool;
  DispatcherOptions opts;
  mutable std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::map<std::string, Handler, std::less<>> handlers;
  std::map<std::int64_t, std::shared_ptr<Flight>> flights;
  bool started = false, stopping = false, paused = false, woken = false;
  std::vector<Done> done;  // outcomes waiting to be recorded
  bool flushing = false;   // a thread is recording outcomes
  Stats st;
  std::thread thread;
  std::mutex stop_mu;  // serializes stop()
};

Dispatcher::Dispatcher(TaskStore& store, ThreadPool& pool, DispatcherOptions opts)
    : impl_(std::make_shared<Impl>(store, pool, std::move(opts))) {}

Dispatcher::~Dispatcher() { stop(std::chrono::milliseconds(0)); }

void Dispatcher::handle(std::string name, Handler h) {
  if (name.empty()) throw std::invalid_argument("taskpool::Dispatcher::handle: empty handler name");
  std::lock_guard lk(impl_->mu);
  impl_->handlers[std::move(name)] = std::move(h);
}

void Dispatcher::start() {
  std::lock_guard lk(impl_->mu);
  if (impl_->started) return;
  impl_->started = true;
  try {
    if (std::size_t n = impl_->store.recover_expired()) impl_->log("recovered " + std::to_string(n) + " task(s) left running by a dead runner");
  } catch (const std::exception& e) {
    impl_->log(std::string("recovery failed: ") + e.what());
  }
  impl_->thread = std::thread([impl = impl_] { impl->loop(); });
}

void Dispatcher::stop(std::chrono::milliseconds grace) {
  auto& m = *impl_;
  std::lock_guard stop_lk(m.stop_mu);
  std::unique_lock lk(m.mu);
  if (!m.started || m.stopping) {
    if (m.thread.joinable()) {
      lk.unlock();
      m.thread.join();
    }
    return;
  }
  m.stopping = true;
  m.cv.notify_all();
  if (!m.cv.wait_for(lk, grace, [&] { return m.flights.empty(); })) {
    for (auto& [id, f] : m.flights) f->stop.request_stop();
    m.cv.wait(lk, [&] { return m.flights.empty(); });
  }
  lk.unlock();
  m.thread.join();
}

void Dispatcher::pause() {
  std::lock_guard lk(impl_->mu);
  impl_->paused = true;
}
void Dispatcher::resume() {
  std::lock_guard lk(impl_->mu);
  impl_->paused = false;
  impl_->woken = true;
  impl_->cv.notify_all();
}
void Dispatcher::wake() {
  std::lock_guard lk(impl_->mu);
  impl_->woken = true;
  impl_->cv.notify_all();
}
std::int64_t Dispatcher::add(const NewTask& t) {
  std::int64_t id = impl_->store.add(t);
  wake();
  return id;
}
Dispatcher::Stats Dispatcher::stats() const {
  std::lock_guard lk(impl_->mu);
  Stats s = impl_->st;
  s.in_flight = impl_->flights.size();
  return s;
}
const std::string& Dispatcher::owner() const { return impl_->opts.owner; }

}  // namespace taskpool
