// tests/exec_allow_test.cpp — `serve --exec-allow`: the exec handler with an allow list runs
// only the listed programs (resolved through PATH and symlinks, so another name for the same
// file is the same program), and refuses any other with a clear error before starting it.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <stop_token>

#include "common/test_util.hpp"
#include "taskpool/exec_handler.hpp"

namespace {

std::string run(const taskpool::Handler& h, const std::string& payload) {
  taskpool::TaskRecord t;
  t.id = 7;
  t.exec_task = "exec";
  t.payload = payload;
  std::stop_source stop;
  return h(taskpool::TaskContext{t, stop.get_token()});
}

TEST(ExecAllow, RunsListedProgramsAndRefusesOthers) {
  auto h = taskpool::exec_handler(taskpool::ExecOptions{{"/bin/echo"}});
  // PATH lookup and /bin -> /usr/bin resolve to the listed file.
  EXPECT_NE(run(h, R"({"argv": ["echo", "hi"]})").find("hi"), std::string::npos);
  EXPECT_NE(run(h, R"({"argv": ["/usr/bin/echo", "hi"]})").find("hi"), std::string::npos);
  try {
    run(h, R"({"argv": ["sh", "-c", "echo no"]})");
    FAIL() << "sh ran although only echo is allowed";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("is not allowed by --exec-allow"), std::string::npos) << e.what();
  }
  // A program that does not exist is refused the same way (nothing to match).
  EXPECT_THROW(run(h, R"({"argv": ["no-such-program-xyz"]})"), std::runtime_error);
}

TEST(ExecAllow, ASymlinkToAnotherProgramIsThatProgram) {
  taskpool::test::TempDir dir;
  auto link = dir.path() / "echo";
  std::filesystem::create_symlink("/bin/sh", link);
  auto h = taskpool::exec_handler(taskpool::ExecOptions{{"/bin/echo"}});
  EXPECT_THROW(run(h, R"({"argv": [")" + link.string() + R"(", "-c", "true"]})"), std::runtime_error);
  // Listed by its link name, the link's target is what is allowed.
  auto h2 = taskpool::exec_handler(taskpool::ExecOptions{{link.string()}});
  EXPECT_NO_THROW(run(h2, R"({"argv": ["sh", "-c", "true"]})"));
}

TEST(ExecAllow, AnEmptyListAllowsEverything) {
  auto h = taskpool::exec_handler(taskpool::ExecOptions{});
  EXPECT_NO_THROW(run(h, R"({"argv": ["sh", "-c", "true"]})"));
}

}  // namespace
