// tests/store_query_test.cpp — listing with filters and keyset pages, remove, and the bulk
// cancel_matching / retry_matching, through TaskStore calls only (so the suite can run on any
// backend): each filter selects exactly its rows, pages never skip or repeat a row, and the bulk
// calls change exactly the rows a listing with the same query shows, and nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/store_fixture.hpp"
#include "taskpool/store.hpp"

using namespace std::chrono_literals;

namespace {

using taskpool::ListQuery;
using taskpool::NewTask;
using taskpool::TaskRecord;
using taskpool::TaskStatus;

class StoreQuery : public taskpool::test::BackendStoreFixture {
 protected:
  std::vector<std::int64_t> ids(const ListQuery& q) {
    std::vector<std::int64_t> out;
    for (auto& r : store_->list(q)) out.push_back(r.id);
    return out;
  }
  std::int64_t add(NewTask t) { return store_->add(t); }
  // Claims, starts and completes one due task (the store's own run protocol).
  void run_one(bool ok, const std::string& text) {
    auto claims = store_->claim_due({.owner = "tester", .limit = 1, .lease = 30s});
    ASSERT_EQ(claims.size(), 1u);
    std::vector<TaskRecord*> ptrs{&claims[0]};
    ASSERT_TRUE(store_->start_runs(ptrs)[0]);
    taskpool::RunResult r;
    r.ok = ok;
    (ok ? r.result : r.error) = text;
    r.retryable = false;
    ASSERT_TRUE(store_->complete(claims[0], r, {}));
  }
};

TEST_P(StoreQuery, EachFilterSelectsExactlyItsRows) {
  auto now = std::chrono::system_clock::now();
  auto a = add({.creator_id = "alice", .group_id = "g1", .task_type = "memo", .payload = R"({"text": "needle"})",
                .exec_time = now - 1h});
  auto b = add({.creator_id = "bob", .group_id = "g2", .task_type = "memo", .exec_task = "mail", .exec_time = now + 1h});
  auto c = add({.creator_id = "alice", .group_id = "g2", .task_type = "exec", .payload = R"({"argv": ["x"]})",
                .exec_time = now + 2h});
  EXPECT_EQ(ids({.handler = "memo"}), (std::vector<std::int64_t>{a}));  // b's handler is its exec_task
  EXPECT_EQ(ids({.handler = "mail"}), (std::vector<std::int64_t>{b}));
  EXPECT_EQ(ids({.creator_id = "alice"}), (std::vector<std::int64_t>{a, c}));
  EXPECT_EQ(ids({.group_id = "g2"}), (std::vector<std::int64_t>{b, c}));
  EXPECT_EQ(ids({.text = "needle"}), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(ids({.due_before = now}), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(ids({.due_after = now + 1h}), (std::vector<std::int64_t>{b, c}));
  EXPECT_EQ(ids({.due_before = now + 90min, .due_after = now}), (std::vector<std::int64_t>{b}));
  EXPECT_EQ(ids({.creator_id = "alice", .group_id = "g2"}), (std::vector<std::int64_t>{c}));
  EXPECT_EQ(ids({.status = TaskStatus::waiting, .handler = "exec"}), (std::vector<std::int64_t>{c}));
  EXPECT_TRUE(ids({.status = TaskStatus::done}).empty());
  // Text also matches the result and the last error.
  run_one(false, "boom: disk on fire");
  EXPECT_EQ(ids({.text = "disk on fire"}), (std::vector<std::int64_t>{a}));
  EXPECT_EQ(ids({.status = TaskStatus::failed}), (std::vector<std::int64_t>{a}));
}

TEST_P(StoreQuery, KeysetPagesCoverEveryRowOnceInBothOrders) {
  std::vector<std::int64_t> all;
  for (int i = 0; i < 23; ++i) all.push_back(add({.task_type = i % 2 ? "odd" : "even"}));
  std::vector<std::int64_t> seen;
  ListQuery q{.limit = 5};
  for (;;) {
    auto page = ids(q);
    seen.insert(seen.end(), page.begin(), page.end());
    if (page.size() < q.limit) break;
    q.after_id = page.back();
  }
  EXPECT_EQ(seen, all);
  seen.clear();
  ListQuery n{.newest_first = true, .limit = 4};
  for (;;) {
    auto page = ids(n);
    seen.insert(seen.end(), page.begin(), page.end());
    if (page.size() < n.limit) break;
    n.before_id = page.back();
  }
  std::vector<std::int64_t> rev(all.rbegin(), all.rend());
  EXPECT_EQ(seen, rev);
  // A filtered page: only "odd" rows, ascending after a cursor.
  auto odd = ids({.handler = "odd", .after_id = all[10], .limit = 3});
  EXPECT_EQ(odd, (std::vector<std::int64_t>{all[11], all[13], all[15]}));
}

TEST_P(StoreQuery, RemoveDeletesFinishedAndWaitingTasksWithTheirReportsButNotRunningOnes) {
  auto done = add({.task_type = "t"});
  run_one(true, "ok");
  ASSERT_FALSE(store_->task_reports(done, 10).empty());
  auto running = add({.task_type = "t"});
  auto claims = store_->claim_due({.owner = "tester", .limit = 1, .lease = 30s});
  ASSERT_EQ(claims.size(), 1u);
  auto waiting = add({.task_type = "t", .exec_time = std::chrono::system_clock::now() + 1h});

  EXPECT_TRUE(store_->remove(done));
  EXPECT_FALSE(store_->get(done));
  EXPECT_TRUE(store_->task_reports(done, 10).empty());
  EXPECT_FALSE(store_->remove(running));
  EXPECT_EQ(store_->get(running)->status, TaskStatus::running);
  EXPECT_TRUE(store_->remove(waiting));
  EXPECT_FALSE(store_->remove(waiting));  // absent
  EXPECT_FALSE(store_->remove(12345));
}

TEST_P(StoreQuery, BulkCallsChangeExactlyTheMatchingRows) {
  auto later = std::chrono::system_clock::now() + 1h;
  std::vector<std::int64_t> a, b;
  for (int i = 0; i < 5; ++i) a.push_back(add({.creator_id = "a", .task_type = "t", .exec_time = later}));
  for (int i = 0; i < 3; ++i) b.push_back(add({.creator_id = "b", .task_type = "t", .exec_time = later}));
  EXPECT_EQ(store_->cancel_matching({.creator_id = "a", .limit = 1000}), 5u);
  for (auto id : a) EXPECT_EQ(store_->get(id)->status, TaskStatus::cancelled);
  for (auto id : b) EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  // A second cancel finds nothing to cancel; retry brings back exactly the cancelled ones.
  EXPECT_EQ(store_->cancel_matching({.creator_id = "a"}), 0u);
  EXPECT_EQ(store_->retry_matching({.status = TaskStatus::cancelled}), 5u);
  for (auto id : a) EXPECT_EQ(store_->get(id)->status, TaskStatus::waiting);
  EXPECT_EQ(store_->retry_matching({}), 0u);  // nothing finished
  // The limit bounds a bulk call: the first two matches, in id order.
  EXPECT_EQ(store_->cancel_matching({.creator_id = "b", .limit = 2}), 2u);
  EXPECT_EQ(store_->get(b[0])->status, TaskStatus::cancelled);
  EXPECT_EQ(store_->get(b[1])->status, TaskStatus::cancelled);
  EXPECT_EQ(store_->get(b[2])->status, TaskStatus::waiting);
  // Cancellations write reports as cancel() does.
  EXPECT_EQ(store_->task_reports(a[0], 10).size(), 1u);
}

TEST_P(StoreQuery, RetryMatchingSkipsATaskWhoseUniqueKeyIsLiveAgain) {
  auto first = add({.task_type = "t", .unique_key = "k"});
  ASSERT_TRUE(store_->cancel(first));
  auto second = add({.task_type = "t", .unique_key = "k"});
  ASSERT_NE(first, second);
  auto other = add({.task_type = "t"});
  ASSERT_TRUE(store_->cancel(other));
  EXPECT_EQ(store_->retry_matching({.status = TaskStatus::cancelled}), 1u);
  EXPECT_EQ(store_->get(first)->status, TaskStatus::cancelled);
  EXPECT_EQ(store_->get(other)->status, TaskStatus::waiting);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreQuery, ::testing::Values(taskpool::test::Backend::sqlite, taskpool::test::Backend::postgres),
                         taskpool::test::backend_name);

}  // namespace
