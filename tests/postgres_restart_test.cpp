// tests/postgres_restart_test.cpp — the PostgreSQL store across a restart of the server
// (TASKPOOL_TEST_PG_RESTART, set by tests/pg/cluster.sh). It drops every connection of every
// test, so CTest runs it alone (RUN_SERIAL, tests/CMakeLists.txt).
#include <cstdlib>
#include <thread>

#include "common/pg_util.hpp"
#include "taskpool/postgres_store.hpp"

using namespace std::chrono_literals;

namespace taskpool {
namespace {

// Calls f until it stops throwing StoreError (the server is coming back), at most `tries` times.
template <class F>
auto until_ok(F&& f, int tries = 300) {
  for (int i = 0;; ++i) {
    try {
      return f();
    } catch (const StoreError&) {
      if (i >= tries) throw;
      std::this_thread::sleep_for(100ms);
    }
  }
}

// Invariant: a server restart while runs are claimed and started loses nothing: once the
// server is back, the same store object (no reopen) records every outcome exactly once, the
// waiting tasks are still there, wait_for_change reports the reconnect, and nothing crashed.
TEST(PostgresRestartTest, ServerRestartLosesNothing) {
  if (test::pg_skipped()) GTEST_SKIP() << "TASKPOOL_TEST_PG=skip";
  const std::string base = test::pg_base_uri();
  if (base.empty()) FAIL() << test::kPgUnset;
  const char* restart = std::getenv("TASKPOOL_TEST_PG_RESTART");
  if (!restart || !*restart) GTEST_SKIP() << "TASKPOOL_TEST_PG_RESTART is unset (an existing server is not restarted)";
  const std::string schema = test::fresh_schema("restart");
  PostgresOptions o;
  o.log = [](const std::string&) {};
  auto store = open_postgres_store(test::with_schema(base, schema), o);
  std::vector<NewTask> batch(50);
  for (auto& t : batch) t.task_type = "memo";
  store->add_batch(batch);
  auto got = store->claim_due({.owner = "n1", .limit = 10});
  ASSERT_EQ(got.size(), 10u);
  std::vector<TaskRecord*> ptrs;
  for (auto& r : got) ptrs.push_back(&r);
  ASSERT_EQ(store->start_runs(ptrs), std::vector<bool>(10, true));
  ASSERT_EQ(std::system(restart), 0);
  std::vector<TaskStore::Completion> done;
  for (auto& r : got) done.push_back({&r, {.ok = true, .result = "r"}});
  auto recorded = until_ok([&] { return store->complete_batch(done, {}); });
  EXPECT_EQ(recorded, std::vector<bool>(10, true));
  EXPECT_TRUE(store->wait_for_change(std::chrono::steady_clock::now() + 60s));
  auto st = store->stats();
  EXPECT_EQ(st.done, 10);
  EXPECT_EQ(st.waiting, 40);
  EXPECT_EQ(st.running, 0);
  store.reset();
  test::pg_drop_schema(base, schema);
}

}  // namespace
}  // namespace taskpool
