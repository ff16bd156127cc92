// tests/common/store_fixture.hpp — a fresh SQLite task database per test.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/test_util.hpp"
#include "taskpool/sqlite_store.hpp"

namespace taskpool::test {

// path_ names tasks.db in a per-test directory (dir_); store_ is open on it.
class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = tmp_.file("tasks.db");
    store_ = open_sqlite_store(path_);
  }
  void TearDown() override { store_.reset(); }

  TempDir tmp_;
  const std::filesystem::path& dir_ = tmp_.path();
  std::string path_;
  std::unique_ptr<TaskStore> store_;
};

}  // namespace taskpool::test
