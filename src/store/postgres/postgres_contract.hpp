// src/store/postgres/postgres_contract.hpp — the session-5 contract methods the PostgreSQL store
// implements before TaskStore declares them (remove, cancel_matching, retry_matching [http];
// heartbeat, nodes, try_lead, remove_node [nodes]). Until the branches merge and these become TaskStore virtuals,
// tests reach them through these functions. `s` must be a PostgreSQL store (else
// std::invalid_argument). Thread-safety and blocking: as TaskStore.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "taskpool/store.hpp"

namespace taskpool::store::pg_contract {

// The contract's NodeInfo, field for field, until store.hpp has it (then: using NodeInfo).
struct NodeInfo {
  std::string owner, host;
  std::int64_t pid = 0;
  std::size_t threads = 0, busy = 0, queued = 0, in_flight = 0;
  bool paused = false;
  wall_time started{}, heartbeat{};
};
void heartbeat(TaskStore& s, const NodeInfo& n);
std::vector<NodeInfo> nodes(TaskStore& s, std::chrono::milliseconds max_age);

bool remove(TaskStore& s, std::int64_t id);
std::size_t cancel_matching(TaskStore& s, const ListQuery& q);
std::size_t retry_matching(TaskStore& s, const ListQuery& q);
bool try_lead(TaskStore& s, std::string_view owner, std::chrono::milliseconds ttl);
void remove_node(TaskStore& s, std::string_view owner);

}  // namespace taskpool::store::pg_contract
