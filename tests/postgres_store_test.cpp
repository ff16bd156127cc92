// tests/postgres_store_test.cpp — what only the PostgreSQL store has: lost connections, password
// redaction, schema identity and concurrent migration, NOTIFY for rows other programs insert,
// SKIP LOCKED claims across connections, schemas. Against the real server of TASKPOOL_TEST_PG
// (tests/pg/cluster.sh); the behaviour both stores share is in store_test.cpp.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/pg_util.hpp"
#include "common/test_util.hpp"
#include "taskpool/postgres_store.hpp"

using namespace std::chrono_literals;

namespace taskpool {
namespace {

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::pg_skipped()) GTEST_SKIP() << "TASKPOOL_TEST_PG=skip";
    base_ = test::pg_base_uri();
    if (base_.empty()) FAIL() << test::kPgUnset;
    schema_ = test::fresh_schema("tpg");
    // Its own application_name, so the test can terminate exactly its own connections.
    uri_ = test::with_schema(base_, schema_) + "&application_name=" + schema_;
  }
  void TearDown() override {
    if (!schema_.empty()) test::pg_drop_schema(base_, schema_);
  }
  std::string q(const std::string& sql) { return test::pg_query(base_, schema_, sql).value_or(""); }
  NewTask memo(std::string key = "") {
    NewTask t;
    t.creator_id = "123";
    t.task_type = "memo";
    t.unique_key = std::move(key);
    return t;
  }
  // The password of base_ (user:PASSWORD@), "" when it has none.
  std::string password() const {
    auto at = base_.find('@');
    auto colon = base_.find(':', base_.find("://") + 3);
    return colon < at && at != std::string::npos ? base_.substr(colon + 1, at - colon - 1) : "";
  }
  std::string admin() const {
    const char* a = std::getenv("TASKPOOL_TEST_PG_ADMIN");
    return a && *a ? a : base_;
  }
  // Terminates every connection this test's stores hold (pg_terminate_backend, as an admin).
  int terminate_ours() {
    auto n = test::pg_query(admin(), "",
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '" +
                                schema_ + "'");
    return n ? std::stoi(*n) : 0;
  }

  std::string base_, schema_, uri_;
};

// Invariant: a connection killed under the store (pg_terminate_backend) makes at most the call
// in flight fail with StoreError; the next calls reconnect by themselves, no task is lost or
// duplicated, the log says so in single password-free lines, and wait_for_change reports the
// LISTEN connection's reconnect as a possible change.
TEST_F(PostgresStoreTest, ReconnectsAfterTerminateBackendLosingNothing) {
  std::mutex mu;
  std::vector<std::string> lines;
  PostgresOptions o;
  o.log = [&](const std::string& l) {
    std::lock_guard lk(mu);
    lines.push_back(l);
  };
  auto store = open_postgres_store(uri_, o);
  std::set<std::int64_t> ids;
  int failures = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 20; ++i) ids.insert(store->add(memo()));
    ASSERT_GE(terminate_ours(), 1);
    // The first call after the kill may fail (it is the call in flight); the retry succeeds.
    for (int attempt = 0;; ++attempt) {
      try {
        ids.insert(store->add(memo()));
        break;
      } catch (const StoreError& e) {
        ++failures;
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        ASSERT_LT(attempt, 50) << e.what();
        std::this_thread::sleep_for(100ms);
      }
    }
    // The LISTEN connection died too: the waiter reconnects and reports a possible change.
    EXPECT_TRUE(store->wait_for_change(std::chrono::steady_clock::now() + 60s));
  }
  EXPECT_GE(failures, 1);
  EXPECT_EQ(ids.size(), 105u);
  EXPECT_EQ(store->stats().waiting, 105);
  EXPECT_EQ(q("SELECT count(*) FROM tasks"), "105");
  std::lock_guard lk(mu);
  bool lost = false, back = false;
  for (const auto& l : lines) {
    EXPECT_EQ(l.find('\n'), std::string::npos);
    if (!password().empty()) {
      EXPECT_EQ(l.find(password()), std::string::npos) << l;
    }
    lost |= l.find("lost the connection") != std::string::npos;
    back |= l.find("reconnected") != std::string::npos;
  }
  EXPECT_TRUE(lost);
  EXPECT_TRUE(back);
}

// Invariant: a run in flight when its connection dies is not lost: its completion, repeated by
// the caller after the StoreError, is recorded exactly once (the fencing token refuses a second
// recording), and a claim whose start failed can be started again.
TEST_F(PostgresStoreTest, CompletionRetriedAfterALostConnectionIsRecordedOnce) {
  PostgresOptions o;
  o.log = [](const std::string&) {};
  auto store = open_postgres_store(uri_, o);
  auto id = store->add(memo());
  auto got = store->claim_due({.owner = "n1", .limit = 1, .lease = 30s});
  ASSERT_EQ(got.size(), 1u);
  ASSERT_GE(terminate_ours(), 1);
  std::vector<TaskRecord*> start{&got[0]};
  std::vector<bool> started;
  for (int attempt = 0; started.empty(); ++attempt) {
    try {
      started = store->start_runs(start);
    } catch (const StoreError&) {
      ASSERT_LT(attempt, 50);
    }
  }
  ASSERT_TRUE(started[0]);
  ASSERT_TRUE(store->complete(got[0], {.ok = true, .result = "r"}, {}));
  EXPECT_FALSE(store->complete(got[0], {.ok = true, .result = "again"}, {}));
  EXPECT_EQ(store->get(id)->status, TaskStatus::done);
  EXPECT_EQ(store->get(id)->result.value_or(""), "r");
  EXPECT_EQ(store->reports(true, 10).size(), 1u);
}

// Invariant: no error of a failed open shows the URI's password (a wrong password, a refused
// port, the password given as a parameter), and each is one line naming the server.
TEST_F(PostgresStoreTest, PasswordNeverAppearsInErrors) {
  const std::string secret = "s3cr3t-Pa55word";
  auto at = base_.find('@');
  ASSERT_NE(at, std::string::npos) << "TASKPOOL_TEST_PG needs user:password@";
  std::string user = base_.substr(0, base_.find(':', base_.find("://") + 3));
  std::string rest = base_.substr(at);  // @host:port/db...
  std::vector<std::string> uris = {
      user + ":" + secret + rest,                                                      // refused login
      "postgresql://someone:" + secret + "@127.0.0.1:1/db",                            // refused port
      "postgres://someone@127.0.0.1:1/db?password=" + secret + "&connect_timeout=2",  // as a parameter
  };
  PostgresOptions o;
  o.connect_timeout = 2s;
  for (const auto& u : uris) {
    try {
      open_postgres_store(u, o);
      ADD_FAILURE() << "opened " << redact_uri(u);
    } catch (const StoreError& e) {
      std::string m = e.what();
      EXPECT_EQ(m.find(secret), std::string::npos) << m;
      EXPECT_EQ(m.find('\n'), std::string::npos) << m;
      EXPECT_NE(m.find("cannot connect"), std::string::npos) << m;
      EXPECT_NE(m.find("***"), std::string::npos) << m;
    }
    try {
      open_store(u, {.connect_timeout = 2s});
      ADD_FAILURE() << "opened " << redact_uri(u);
    } catch (const StoreError& e) {
      EXPECT_EQ(std::string(e.what()).find(secret), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(redact_uri("postgresql://u:p%40ss@h/db?password=x&sslmode=disable"),
            "postgresql://u:***@h/db?password=***&sslmode=disable");
}

// Invariant: a schema that holds tables but is not taskpool's is refused and nothing is written
// to it; a newer taskpool schema is refused too; create=false creates nothing.
TEST_F(PostgresStoreTest, RefusesForeignOrNewerSchemas) {
  q("CREATE SCHEMA \"" + schema_ + "\"");
  q("CREATE TABLE tasks (id int)");
  EXPECT_THROW(open_postgres_store(uri_), StoreError);
  EXPECT_EQ(q("SELECT count(*) FROM pg_tables WHERE schemaname = '" + schema_ + "'"), "1");
  EXPECT_EQ(q("SELECT count(*) FROM information_schema.columns WHERE table_schema = '" + schema_ + "'"), "1");
  q("DROP TABLE tasks");
  open_postgres_store(uri_)->add(memo());
  q("UPDATE taskpool_meta SET value = '99' WHERE key = 'version'");
  try {
    open_postgres_store(uri_);
    ADD_FAILURE() << "a newer schema was opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  std::string other = test::fresh_schema("absent");
  PostgresOptions no_create;
  no_create.create = false;
  EXPECT_THROW(open_postgres_store(test::with_schema(base_, other), no_create), StoreError);
  EXPECT_EQ(q("SELECT count(*) FROM pg_namespace WHERE nspname = '" + other + "'"), "0");
}

// Invariant: many threads and processes opening one new schema at once all succeed: exactly one
// creates it under the advisory lock, the others wait and use it; every add lands.
TEST_F(PostgresStoreTest, ConcurrentFirstUseCreatesOnce) {
  constexpr int kThreads = 6, kProcs = 4;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(go[1]);
      char c;
      int rc = 1;
      if (read(go[0], &c, 1) >= 0) {
        try {
          open_postgres_store(uri_)->add(memo());
          rc = 0;
        } catch (...) {
        }
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  close(go[0]);
  std::atomic<int> ok{0};
  std::vector<std::thread> ts;
  std::atomic<bool> start{false};
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      while (!start.load()) std::this_thread::yield();
      try {
        open_postgres_store(uri_)->add(memo());
        ok.fetch_add(1);
      } catch (const std::exception& e) {
        ADD_FAILURE() << e.what();
      }
    });
  start.store(true);
  close(go[1]);  // releases the children
  for (auto& t : ts) t.join();
  for (pid_t pid : kids) {
    int st = 0;
    waitpid(pid, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  EXPECT_EQ(ok.load(), kThreads);
  EXPECT_EQ(q("SELECT count(*) FROM tasks"), std::to_string(kThreads + kProcs));
  EXPECT_EQ(q("SELECT value FROM taskpool_meta WHERE key = 'version'"), std::to_string(kPostgresSchemaVersion));
}

// Invariant: a connection lost in the middle of opening (here: terminated while it waits for
// the migration lock, as when a node starts during a server restart) does not fail the open:
// it starts over, migrates once, and the store works.
TEST_F(PostgresStoreTest, OpenSurvivesAConnectionLostMidway) {
  PGconn* holder = PQconnectdb(base_.c_str());
  ASSERT_EQ(PQstatus(holder), CONNECTION_OK) << PQerrorMessage(holder);
  auto sql = [&](const std::string& s) {
    PGresult* r = PQexec(holder, s.c_str());
    const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
  };
  const std::string key = "hashtextextended('taskpool schema ' || '" + schema_ + "', 0)";
  ASSERT_TRUE(sql("SELECT pg_advisory_lock(" + key + ")"));  // the migration waits for it
  auto waiting = [&] {
    auto n = test::pg_query(admin(), "",
                            "SELECT count(*) FROM pg_stat_activity WHERE application_name = '" + schema_ +
                                "' AND wait_event_type = 'Lock'");
    return n && *n != "0";
  };
  std::atomic<bool> opened{false};
  std::string error;
  std::thread opener([&] {
    try {
      PostgresOptions o;
      o.log = [](const std::string&) {};
      open_postgres_store(uri_, o)->add(memo());
      opened.store(true);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  EXPECT_TRUE(test::eventually(waiting, 20s));
  EXPECT_GE(terminate_ours(), 1);
  EXPECT_TRUE(test::eventually(waiting, 20s));  // opening again, waiting again
  ASSERT_TRUE(sql("SELECT pg_advisory_unlock(" + key + ")"));
  opener.join();
  PQfinish(holder);
  EXPECT_TRUE(opened.load()) << error;
  EXPECT_EQ(q("SELECT count(*) FROM tasks"), "1");
  EXPECT_EQ(q("SELECT value FROM taskpool_meta WHERE key = 'version'"), std::to_string(kPostgresSchemaVersion));
}

// Invariant: a row another program inserts with plain SQL (only task_type given; the defaults
// fill the rest on the database clock) wakes a waiting store through the trigger's NOTIFY long
// before the wait's deadline, and is claimable at once.
TEST_F(PostgresStoreTest, NotifyWakesWaiterForPlainSqlInsert) {
  auto store = open_postgres_store(uri_);
  store->wait_for_change(std::chrono::steady_clock::now());
  std::thread writer([&] {
    std::this_thread::sleep_for(20ms);  // let the waiter sleep first (not an ordering the test needs)
    q("INSERT INTO tasks (task_type, payload) VALUES ('memo', '{\"text\": \"hi\"}')");
  });
  EXPECT_TRUE(store->wait_for_change(std::chrono::steady_clock::now() + 60s));
  writer.join();
  auto got = store->claim_due({.owner = "n", .limit = 10});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].task_type, "memo");
  EXPECT_EQ(got[0].payload, R"({"text": "hi"})");
  // And inside the application's own transaction: nothing is visible (or woken) before COMMIT.
  q("BEGIN; INSERT INTO tasks (task_type) VALUES ('memo'); ROLLBACK");
  EXPECT_EQ(store->stats().waiting, 0);
}

// Invariant: claimers on separate connections racing over one backlog (FOR UPDATE SKIP
// LOCKED) take every task exactly once; none waits for another's locked rows forever.
TEST_F(PostgresStoreTest, ConcurrentClaimsTakeEachTaskOnce) {
  constexpr int kTasks = 400, kClaimers = 4;
  auto store = open_postgres_store(uri_);
  std::vector<NewTask> batch(kTasks, memo());
  store->add_batch(batch);
  std::mutex mu;
  std::map<std::int64_t, int> seen;
  std::vector<std::thread> ts;
  for (int c = 0; c < kClaimers; ++c)
    ts.emplace_back([&, c] {
      auto s = open_postgres_store(uri_);
      for (;;) {
        auto got = s->claim_due({.owner = "n" + std::to_string(c), .limit = 7});
        if (got.empty()) break;
        std::lock_guard lk(mu);
        for (auto& r : got) ++seen[r.id];
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kTasks));
  for (auto& [id, n] : seen) EXPECT_EQ(n, 1) << "task " << id;
  EXPECT_EQ(store->stats().running, kTasks);
}

// Invariant: ?schema= keeps applications apart in one database (a name that needs quoting
// works), and a read-only store reads but never writes.
TEST_F(PostgresStoreTest, SchemasAreSeparateAndReadOnlyWritesNothing) {
  const std::string odd = test::fresh_schema("Odd Name-") + "\"x";
  std::string enc;
  for (char c : odd) enc += c == ' ' ? std::string("%20") : c == '"' ? std::string("%22") : std::string(1, c);
  auto a = open_postgres_store(uri_);
  auto b = open_postgres_store(test::with_schema(base_, enc));
  a->add(memo());
  EXPECT_EQ(a->stats().waiting, 1);
  EXPECT_EQ(b->stats().waiting, 0);
  b.reset();
  test::pg_drop_schema(base_, odd);
  PostgresOptions ro;
  ro.read_only = true;
  auto r = open_postgres_store(uri_, ro);
  EXPECT_EQ(r->list({}).size(), 1u);
  EXPECT_THROW(r->add(memo()), StoreError);
  EXPECT_EQ(a->stats().waiting, 1);
}

// Invariant (contract: claim caps): a claim never gives a handler more runs than its cap's free
// slots (0 = none), fills the rest of the batch from other handlers, and keeps the claim order.
TEST_F(PostgresStoreTest, ClaimCapsLimitRunsPerHandler) {
  auto store = open_postgres_store(uri_);
  for (const char* h : {"a", "b", "c"})
    for (int i = 0; i < 5; ++i) {
      NewTask t = memo();
      t.task_type = h;
      t.task_level = h[0] == 'b' ? 9 : 5;
      store->add(t);
    }
  ClaimRequest req{.owner = "n", .limit = 10};
  req.caps = {{"a", 2}, {"b", 0}};
  auto got = store->claim_due(req);
  std::map<std::string, int> per;
  for (auto& r : got) ++per[r.handler()];
  EXPECT_EQ(per["a"], 2);
  EXPECT_EQ(per["b"], 0);
  EXPECT_EQ(per["c"], 5);
  for (std::size_t i = 1; i < got.size(); ++i) EXPECT_LE(got[i - 1].id, got[i].id);
  req.caps = {{"b", 1}};
  got = store->claim_due(req);
  per.clear();
  for (auto& r : got) ++per[r.handler()];
  EXPECT_EQ(per["b"], 1);
  EXPECT_EQ(per["a"], 3);
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].task_type, "b") << "level 9 first";
}

// Invariant (contract: remove, cancel_matching, retry_matching): remove deletes a non-running
// task with its reports and refuses a running one; the bulk operations act on exactly the
// matching rows in one transaction, and a retry whose unique key is live elsewhere is skipped.
TEST_F(PostgresStoreTest, RemoveAndBulkOperations) {
  auto store = open_postgres_store(uri_);
  auto a = store->add(memo());
  auto b = store->add(memo());
  auto k1 = store->add(memo("key"));
  ASSERT_TRUE(store->cancel(a));
  EXPECT_EQ(q("SELECT count(*) FROM reports WHERE task_id = " + std::to_string(a)), "1");
  EXPECT_TRUE(store->remove(a));
  EXPECT_FALSE(store->get(a));
  EXPECT_EQ(q("SELECT count(*) FROM reports WHERE task_id = " + std::to_string(a)), "0");
  EXPECT_FALSE(store->remove(a));
  auto running = store->claim_due({.owner = "n", .limit = 1});
  ASSERT_EQ(running.size(), 1u);
  ASSERT_EQ(running[0].id, b);  // claim order: exec_time, then id
  EXPECT_FALSE(store->remove(running[0].id));
  ListQuery waiting;
  waiting.status = TaskStatus::waiting;
  EXPECT_EQ(store->cancel_matching(waiting), 1u);  // the other waiting one
  EXPECT_EQ(store->stats().cancelled, 1);
  EXPECT_EQ(store->cancel_matching({}), 1u);  // the running one
  EXPECT_EQ(store->stats().cancelled, 2);
  auto k2 = store->add(memo("key"));  // the key is free again: a new live task holds it
  EXPECT_NE(k1, k2);
  ListQuery cancelled;
  cancelled.status = TaskStatus::cancelled;
  // The one without a live twin is retried; the keyed one is left alone (k2 holds its key).
  EXPECT_EQ(store->retry_matching(cancelled), 1u);
  EXPECT_EQ(store->get(b)->status, TaskStatus::waiting);
  EXPECT_EQ(store->get(k1)->status, TaskStatus::cancelled);
}

// Invariant (contract: leader): one leader at a time on the database clock; the holder renews
// it, others are refused until it expires or the holder stops (remove_node).
TEST_F(PostgresStoreTest, LeaderRowWithTtl) {
  auto store = open_postgres_store(uri_);
  EXPECT_TRUE(store->try_lead("a", 30s));
  EXPECT_FALSE(store->try_lead("b", 30s));
  EXPECT_TRUE(store->try_lead("a", 30s));
  store->remove_node("a");
  EXPECT_TRUE(store->try_lead("b", 1ms));  // taken, and expiring at once
  EXPECT_TRUE(test::eventually([&] { return store->try_lead("c", 30s); }));
  EXPECT_FALSE(store->try_lead("b", 30s));
  EXPECT_EQ(q("SELECT owner FROM leader"), "c");
}

// Invariant (contract: nodes): a heartbeat upserts one row per owner (stamped by the database
// clock); nodes() lists live rows, prune_nodes() deletes rows older than max_age; remove_node
// drops one.
TEST_F(PostgresStoreTest, NodesHeartbeatAndAgeOut) {
  auto store = open_postgres_store(uri_);
  NodeInfo n{.owner = "h:1:1:a", .host = "h", .pid = 1, .threads = 4, .busy = 2, .queued = 3, .in_flight = 5};
  store->heartbeat(n);
  n.busy = 1;
  store->heartbeat(n);
  store->heartbeat({.owner = "h:2:2:b", .host = "h", .pid = 2, .paused = true});
  auto live = store->nodes(60s);
  ASSERT_EQ(live.size(), 2u);
  EXPECT_EQ(live[0].owner, "h:1:1:a");
  EXPECT_EQ(live[0].busy, 1u);
  EXPECT_EQ(live[0].in_flight, 5u);
  EXPECT_TRUE(live[1].paused);
  EXPECT_GT(live[0].heartbeat.time_since_epoch().count(), 0);
  q("UPDATE nodes SET heartbeat = heartbeat - 120000 WHERE owner = 'h:2:2:b'");  // a dead node's last beat
  live = store->nodes(60s);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(q("SELECT count(*) FROM nodes"), "2");  // hidden, not deleted
  EXPECT_EQ(store->prune_nodes(60s), 1u);
  EXPECT_EQ(q("SELECT count(*) FROM nodes"), "1");
  store->remove_node("h:1:1:a");
  EXPECT_TRUE(store->nodes(60s).empty());
}

}  // namespace
}  // namespace taskpool
