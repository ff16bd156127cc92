// tests/nodes_test.cpp — the nodes table and the maintenance leader row (TaskStore::heartbeat,
// remove_node, nodes, try_lead), through TaskStore calls only, so the same tests apply to every
// backend; then the dispatcher's side: its heartbeat, its clean stop, and which node recovers what.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "common/store_fixture.hpp"
#include "common/test_util.hpp"
#include "taskpool/taskpool.hpp"

using namespace std::chrono_literals;

namespace taskpool {
namespace {

class NodesTest : public test::BackendStoreFixture {
 protected:
  static NodeInfo node(const std::string& owner, std::size_t threads = 4) {
    NodeInfo n;
    n.owner = owner;
    n.host = "host-" + owner;
    n.pid = 1234;
    n.threads = threads;
    n.busy = 1;
    n.queued = 2;
    n.in_flight = 3;
    n.started = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) - 1h;
    return n;
  }
};

TEST_P(NodesTest, HeartbeatUpsertsOneRowPerOwner) {
  const auto before = std::chrono::system_clock::now() - 1s;
  store_->heartbeat(node("a"));
  store_->heartbeat(node("b"));
  auto changed = node("a", 8);
  changed.paused = true;
  changed.heartbeat = wall_time{};  // ignored: the store's clock decides
  store_->heartbeat(changed);
  auto ns = store_->nodes(1min);
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[0].owner, "a");
  EXPECT_EQ(ns[0].host, "host-a");
  EXPECT_EQ(ns[0].pid, 1234);
  EXPECT_EQ(ns[0].threads, 8u);
  EXPECT_EQ(ns[0].busy, 1u);
  EXPECT_EQ(ns[0].queued, 2u);
  EXPECT_EQ(ns[0].in_flight, 3u);
  EXPECT_TRUE(ns[0].paused);
  EXPECT_EQ(ns[0].started, changed.started);
  EXPECT_GE(ns[0].heartbeat, before);
  EXPECT_EQ(ns[1].owner, "b");
  EXPECT_FALSE(ns[1].paused);
}

// Invariant: nodes() lists only rows within max_age and deletes nothing (a later, longer max_age
// shows the old row again); prune_nodes() deletes exactly the older rows and counts them; a
// fresh heartbeat brings a pruned node back.
TEST_P(NodesTest, NodesReadsAndPruneNodesAgesOut) {
  store_->heartbeat(node("old"));
  std::this_thread::sleep_for(30ms);  // the row is now at least 30 ms old
  store_->heartbeat(node("new"));
  auto ns = store_->nodes(20ms);
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].owner, "new");
  EXPECT_EQ(store_->nodes(1h).size(), 2u);  // only hidden
  EXPECT_EQ(store_->prune_nodes(1h), 0u);
  EXPECT_EQ(store_->prune_nodes(20ms), 1u);
  ns = store_->nodes(1h);
  ASSERT_EQ(ns.size(), 1u);
  EXPECT_EQ(ns[0].owner, "new");
  store_->heartbeat(node("old"));
  EXPECT_EQ(store_->nodes(1h).size(), 2u);
}

// Invariant: a read-only store lists nodes (the dashboard of `taskpool web` on a database it may
// only read) and refuses to prune.
TEST_P(NodesTest, ReadOnlyStoreListsNodes) {
  store_->heartbeat(node("old"));
  std::this_thread::sleep_for(30ms);
  StoreOptions ro;
  ro.read_only = true;
  auto reader = open_db(ro);
  EXPECT_TRUE(reader->nodes(20ms).empty());
  EXPECT_EQ(reader->nodes(1h).size(), 1u);
  EXPECT_THROW(reader->prune_nodes(20ms), StoreError);
  EXPECT_EQ(store_->nodes(1h).size(), 1u);
}

TEST_P(NodesTest, RemoveNodeDeletesItsRowAndResigns) {
  store_->heartbeat(node("a"));
  store_->heartbeat(node("b"));
  EXPECT_TRUE(store_->try_lead("a", 1h));
  EXPECT_FALSE(store_->try_lead("b", 1h));
  store_->remove_node("b");  // not the leader: the leader row stays
  EXPECT_FALSE(store_->try_lead("c", 1h));
  store_->remove_node("a");
  auto ns = store_->nodes(1h);
  EXPECT_TRUE(ns.empty());
  EXPECT_TRUE(store_->try_lead("c", 1h));  // at once, not after a TTL
  store_->remove_node("nobody");           // no row: nothing to do
}

TEST_P(NodesTest, LeaderRenewsItsRowAndLosesItOnlyAfterTtl) {
  EXPECT_TRUE(store_->try_lead("a", 1h));
  EXPECT_TRUE(store_->try_lead("a", 1h));  // renewal
  EXPECT_FALSE(store_->try_lead("b", 1h));
  EXPECT_TRUE(store_->try_lead("a", 10ms));
  std::this_thread::sleep_for(30ms);  // a's row has expired
  EXPECT_TRUE(store_->try_lead("b", 1h));
  EXPECT_FALSE(store_->try_lead("a", 1h));
  EXPECT_THROW(store_->try_lead("a", 0ms), std::invalid_argument);
}

// Invariant: of many contenders for a free leader row, on separate connections in threads and
// in processes at once, exactly one wins; the losers see the row held.
TEST_P(NodesTest, ExactlyOneLeaderAmongConcurrentContenders) {
  const int threads = 4, procs = 3;
  std::vector<pid_t> kids;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  for (int p = 0; p < procs; ++p) {
    pid_t pid = fork();
    if (pid == 0) {
      char won = 0;
      try {
        auto s = open_db();
        won = s->try_lead("proc-" + std::to_string(p), 1h) ? 1 : 0;
      } catch (...) {
        won = 2;
      }
      [[maybe_unused]] auto w = write(pipefd[1], &won, 1);
      _exit(0);
    }
    kids.push_back(pid);
  }
  std::atomic<int> wins{0}, errors{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      try {
        auto s = open_db();
        if (s->try_lead("thread-" + std::to_string(t), 1h)) wins.fetch_add(1);
      } catch (...) {
        errors.fetch_add(1);
      }
    });
  for (auto& t : ts) t.join();
  for (pid_t k : kids) waitpid(k, nullptr, 0);
  close(pipefd[1]);
  char c;
  while (read(pipefd[0], &c, 1) == 1) {
    if (c == 1) wins.fetch_add(1);
    if (c == 2) errors.fetch_add(1);
  }
  close(pipefd[0]);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(wins.load(), 1);
}


class NodeDispatcherTest : public NodesTest {
 protected:
  static NewTask memo() {
    NewTask t;
    t.creator_id = "u1";
    t.exec_task = "memo";
    return t;
  }
  static DispatcherOptions fast() {
    DispatcherOptions o;
    o.poll_interval = 20ms;
    o.lease = kMinLease;
    o.heartbeat = 20ms;
    return o;
  }
  bool status_is(std::int64_t id, TaskStatus s) {
    return test::eventually([&] {
      auto r = store_->get(id);
      return r && r->status == s;
    });
  }
  // A memo task left running under `owner`'s claim (lease `lease`) while "other-leader" leads.
  std::int64_t claimed_by(const std::string& owner, std::chrono::milliseconds lease) {
    auto id = store_->add(memo());
    EXPECT_EQ(store_->claim_due({.owner = owner, .limit = 1, .lease = lease}).size(), 1u);
    EXPECT_TRUE(store_->try_lead("other-leader", 1h));
    return id;
  }
  // Starts d (which does not lead) and expects it to take task `id` back and run it.
  void expect_non_leader_runs(Dispatcher& d, std::int64_t id) {
    d.handle("memo", [](const TaskContext&) { return "x"; });
    d.start();
    EXPECT_TRUE(status_is(id, TaskStatus::done));
    EXPECT_FALSE(d.stats().leader);
    d.stop();
  }
};

// Invariant: a started dispatcher shows in nodes() with its pool and pid, leads when nobody else
// does, and a clean stop deletes its row and resigns (another node may lead at once).
TEST_P(NodeDispatcherTest, HeartbeatShowsTheNodeAndStopRemovesIt) {
  ThreadPool pool(3);
  Dispatcher d(*store_, pool, fast());
  d.start();
  auto ns = store_->nodes(1min);
  ASSERT_EQ(ns.size(), 1u);  // the first heartbeat is part of start()
  EXPECT_EQ(ns[0].owner, d.owner());
  EXPECT_EQ(ns[0].pid, ::getpid());
  EXPECT_EQ(ns[0].threads, 3u);
  EXPECT_FALSE(ns[0].host.empty());
  EXPECT_TRUE(d.stats().leader);
  d.pause();
  EXPECT_TRUE(test::eventually([&] {
    auto n = store_->nodes(1min);
    return n.size() == 1 && n[0].paused;
  }));
  d.stop();
  EXPECT_TRUE(store_->nodes(1min).empty());
  EXPECT_TRUE(store_->try_lead("next", 1h));
}

// Invariant: the leader's maintenance deletes the rows of nodes silent for longer than the
// age-out period (a minute, or ten heartbeats), and only those.
TEST_P(NodeDispatcherTest, TheLeaderAgesOutDeadNodes) {
  store_->heartbeat(node("dead"));
  store_->heartbeat(node("alive"));
  sql("UPDATE nodes SET heartbeat = heartbeat - 120000 WHERE owner = 'dead'");  // silent for two minutes
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  d.start();
  EXPECT_TRUE(test::eventually([&] { return store_->nodes(1h).size() == 2; }));  // alive + this node
  EXPECT_TRUE(d.stats().leader);
  auto ns = store_->nodes(1h);
  EXPECT_TRUE(std::none_of(ns.begin(), ns.end(), [](const NodeInfo& n) { return n.owner == "dead"; }));
  d.stop();
}

// Invariant: a node that does not lead never takes back a row whose lease expired under an owner
// it cannot judge (another host); once it leads, it does, and the task runs.
TEST_P(NodeDispatcherTest, OnlyTheLeaderRecoversExpiredLeases) {
  auto id = claimed_by("elsewhere.0:1:1:x", 100ms);
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  std::atomic<int> runs{0};
  d.handle("memo", [&](const TaskContext&) {
    ++runs;
    return "x";
  });
  d.start();
  // Well past the lease, many ticks (each a recovery pass) later: still the other owner's.
  std::this_thread::sleep_for(kMinLease);
  EXPECT_FALSE(d.stats().leader);
  EXPECT_EQ(store_->get(id)->status, TaskStatus::running);
  EXPECT_EQ(runs.load(), 0);
  store_->remove_node("other-leader");  // the leader stops cleanly
  EXPECT_TRUE(status_is(id, TaskStatus::done));
  EXPECT_TRUE(d.stats().leader);
  EXPECT_EQ(runs.load(), 1);
  d.stop();
}

// Invariant: every node, leader or not, takes back at once the rows of an owner provably dead on
// its own host (pid gone), long before their lease expires.
TEST_P(NodeDispatcherTest, NonLeaderRecoversDeadSameHostOwnerAtOnce) {
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, fast());
  // A same-host owner name (HOST:PID:STARTTIME:RANDOM) whose pid is gone: a reaped child's.
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  const std::string& me = d.owner();
  auto c3 = me.rfind(':'), c2 = me.rfind(':', c3 - 1), c1 = me.rfind(':', c2 - 1);
  const std::string dead = me.substr(0, c1) + ":" + std::to_string(child) + me.substr(c2, c3 - c2) + ":dead";
  expect_non_leader_runs(d, claimed_by(dead, 1h));
}

// Invariant: a node's own leaked rows (claimed under its name, no longer in flight: a release
// that failed) are taken back by that node once their lease expired, leader or not: no other node
// could (on the same host their owner is provably alive).
TEST_P(NodeDispatcherTest, NonLeaderRecoversItsOwnLeakedRowsByLease) {
  auto o = fast();
  o.owner = "this-node";
  ThreadPool pool(1);
  Dispatcher d(*store_, pool, o);
  expect_non_leader_runs(d, claimed_by("this-node", 100ms));
}

// Invariant: a leader that stops renewing (dead, or cut off) is replaced once its TTL has passed.
TEST_P(NodeDispatcherTest, SilentLeaderIsReplacedAfterItsTtl) {
  ASSERT_TRUE(store_->try_lead("ghost", 300ms));
  ThreadPool pool(1);
  auto other = open_db();
  Dispatcher d(*other, pool, fast());
  d.start();
  EXPECT_FALSE(d.stats().leader);
  EXPECT_TRUE(test::eventually([&] { return d.stats().leader; }));
  EXPECT_FALSE(store_->try_lead("ghost", 300ms));
  d.stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, NodesTest, ::testing::Values(test::Backend::sqlite, test::Backend::postgres),
                         test::backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, NodeDispatcherTest, ::testing::Values(test::Backend::sqlite, test::Backend::postgres),
                         test::backend_name);

}  // namespace
}  // namespace taskpool
