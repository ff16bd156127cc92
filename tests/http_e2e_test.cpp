// tests/http_e2e_test.cpp — the HTTP options of the real `taskpool` binary: `serve --http` prints
// the dashboard line with its token and serves the API; an address other than loopback without
// an explicit token is exit 2 with nothing created; `taskpool web` serves the database without
// running tasks and refuses the daemon calls; `serve --exec-allow` fails runs of other programs.
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/cli_fixture.hpp"
#include "common/test_util.hpp"

using namespace std::chrono_literals;
using nlohmann::json;

namespace {

class HttpE2E : public taskpool::test::CliTest {
 protected:
  // The dashboard URL the daemon printed: {port, token}.
  std::pair<int, std::string> dashboard() {
    const std::string prefix = "dashboard: http://127.0.0.1:";
    std::string text;
    std::size_t at = std::string::npos;
    EXPECT_TRUE(taskpool::test::eventually([&] {
      text = log_text();
      at = text.find(prefix);
      return at != std::string::npos && text.find('\n', at) != std::string::npos;
    }, 30s)) << text;
    if (at == std::string::npos) return {0, ""};
    std::string line = text.substr(at + prefix.size(), text.find('\n', at) - at - prefix.size());
    auto q = line.find("/?token=");
    if (q == std::string::npos) return {0, ""};
    return {std::stoi(line.substr(0, q)), line.substr(q + 8)};
  }
};

TEST_F(HttpE2E, ServePrintsTheDashboardUrlWithAGeneratedTokenAndServesTheApi) {
  pid_t pid = serve({"--http", "127.0.0.1:0"});
  auto [port, token] = dashboard();
  ASSERT_GT(port, 0);
  EXPECT_EQ(token.size(), 64u);
  httplib::Client c("127.0.0.1", port);
  EXPECT_EQ(c.Get("/api/v1/stats")->status, 401);
  c.set_default_headers({{"Authorization", "Bearer " + token}});
  auto add = c.Post("/api/v1/tasks", R"({"task_type": "exec", "payload": {"argv": ["true"]}})", "application/json");
  ASSERT_EQ(add->status, 201) << add->body;
  auto id = json::parse(add->body)["id"].get<std::int64_t>();
  EXPECT_TRUE(taskpool::test::eventually([&] {
    return json::parse(c.Get(("/api/v1/tasks/" + std::to_string(id)).c_str())->body)["task"]["task_status"] == "done";
  }));
  EXPECT_EQ(c.Post("/api/v1/daemon/pause", "{}", "application/json")->status, 200);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit_within(pid, 60s), 0);
}

TEST_F(HttpE2E, TheTokenComesFromTheOptionOrTheEnvironment) {
  pid_t pid = daemon({"--poll", "50ms", "--http", "0"}, {{"TASKPOOL_HTTP_TOKEN", "from-env"}});
  auto [port, token] = dashboard();
  EXPECT_EQ(token, "from-env");
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit_within(pid, 60s), 0);
}

TEST_F(HttpE2E, AnotherAddressWithoutATokenIsExit2AndCreatesNothing) {
  auto r = cli({"serve", "--http", "0.0.0.0:0"});
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("explicit token"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(db_));
  for (auto* bad : {"http", "70000", "1.2.3.4:", ":80"}) {
    auto b = cli({"serve", "--http", bad});
    EXPECT_EQ(b.rc, 2) << bad << ": " << b.err;
  }
}

TEST_F(HttpE2E, WebServesTheDatabaseWithoutRunningTasks) {
  ASSERT_EQ(cli({"add", "--type", "exec", "--payload", R"({"argv": ["true"]})"}).rc, 0);
  pid_t pid = daemon_of("web", {"--http", "0", "--http-token", "w"});
  auto [port, token] = dashboard();
  ASSERT_EQ(token, "w");
  httplib::Client c("127.0.0.1", port);
  c.set_default_headers({{"Authorization", "Bearer w"}});
  auto list = json::parse(c.Get("/api/v1/tasks")->body);
  ASSERT_EQ(list["tasks"].size(), 1u);
  EXPECT_EQ(list["tasks"][0]["task_status"], "waiting");  // nothing runs here
  EXPECT_EQ(c.Post("/api/v1/daemon/pause", "{}", "application/json")->status, 409);
  EXPECT_TRUE(json::parse(c.Get("/api/v1/nodes")->body)["nodes"].empty());
  // It can still change rows (a watcher is a full API).
  EXPECT_EQ(c.Post("/api/v1/tasks/1/cancel", "{}", "application/json")->status, 200);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit_within(pid, 60s), 0);
  EXPECT_EQ(cli({"web", "--db", (dir_ / "missing.db").string(), "--http", "0"}).rc, 3);
}

TEST_F(HttpE2E, ExecAllowFailsRunsOfOtherPrograms) {
  auto ok = cli({"add", "--type", "exec", "--payload", R"({"argv": ["echo", "allowed"]})"});
  auto no = cli({"add", "--type", "exec", "--payload", R"({"argv": ["sh", "-c", "echo ran"]})"});
  ASSERT_EQ(ok.rc, 0);
  ASSERT_EQ(no.rc, 0);
  pid_t pid = serve({"--exec-allow", "/bin/echo,/bin/true"});
  ASSERT_TRUE(serving());
  auto s = store();
  ASSERT_TRUE(taskpool::test::eventually([&] {
    auto st = s->stats();
    return st.done == 1 && st.failed == 1;
  }));
  auto refused = s->get(std::stoll(no.out));
  ASSERT_TRUE(refused->last_error);
  EXPECT_NE(refused->last_error->find("is not allowed by --exec-allow"), std::string::npos) << *refused->last_error;
  EXPECT_EQ(refused->result, std::nullopt);  // it never ran
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit_within(pid, 60s), 0);
}

}  // namespace
