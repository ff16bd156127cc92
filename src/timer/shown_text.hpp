// src/timer/shown_text.hpp — how outside text appears in a one-line error message (cron
// expressions and zones here; times and durations in the store's time_text.cpp, which may include
// this core-internal header: layers point down). Not installed.
//
// Thread-safety: reentrant. Blocking: none.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace taskpool::detail {

// The text as it goes into a one-line message: control and non-ASCII bytes escaped, cut short.
inline std::string shown(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size() && i < 64; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 64) out += "...";
  return out;
}

}  // namespace taskpool::detail
