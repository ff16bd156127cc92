#include <taskpool/taskpool.hpp>

#include <cstdio>

int main() {
  taskpool::ThreadPool pool(2);
  std::printf("consumer ok %d\n", pool.submit([] { return 6 * 7; }).get());
}
