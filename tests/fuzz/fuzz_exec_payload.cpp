// tests/fuzz/fuzz_exec_payload.cpp — libFuzzer target for the exec handler's payload check
// (validate_exec_payload, run when an exec task is added). Checks: no crash or sanitizer report,
// and only std::invalid_argument ever escapes (anything else would reach the user as a 5xx or
// an exit code 1 instead of a one-line "bad input" message).
#include <cstdint>
#include <string_view>

#include "taskpool/exec_handler.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    taskpool::validate_exec_payload(std::string_view(reinterpret_cast<const char*>(data), size));
  } catch (const std::invalid_argument&) {
  }
  return 0;
}
