// A downstream program using the executor alone: taskpool/core.hpp and taskpool::core.
#include <taskpool/core.hpp>

#include <cstdio>

int main() {
  taskpool::ThreadPool pool(2);
  std::printf("consumer ok %d\n", pool.submit([] { return 6 * 7; }).get());
}
