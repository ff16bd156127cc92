// A downstream program using everything: the pool and the SQLite task table.
#include <taskpool/taskpool.hpp>

#include <cstdio>
#include <filesystem>

int main() {
  taskpool::ThreadPool pool(2);
  auto path = std::filesystem::temp_directory_path() / "taskpool-consumer.db";
  std::filesystem::remove(path);
  auto store = taskpool::open_sqlite_store(path.string());
  auto id = store->add({.task_type = "memo"});
  bool stored = store->get(id).has_value();
  std::filesystem::remove(path);
  std::printf("consumer ok %d %s\n", pool.submit([] { return 6 * 7; }).get(), stored ? "stored" : "lost");
}
