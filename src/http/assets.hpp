// src/http/assets.hpp — the dashboard's files (web/), embedded at build time by
// cmake/embed_files.cmake. Looked up by exact name only, so no request path can reach anything
// else (no path traversal: there is no file system behind it).
// Thread-safety: constant data. Blocking: never.
#pragma once

#include <cstddef>
#include <string_view>

namespace taskpool::http {

struct Asset {
  const char* name;  // "/index.html", "/app.js", ...
  const char* type;  // Content-Type
  const unsigned char* data;
  std::size_t size;
};
extern const Asset kAssets[];
extern const std::size_t kAssetCount;

inline const Asset* find_asset(std::string_view name) {
  for (std::size_t i = 0; i < kAssetCount; ++i)
    if (name == kAssets[i].name) return &kAssets[i];
  return nullptr;
}

}  // namespace taskpool::http
