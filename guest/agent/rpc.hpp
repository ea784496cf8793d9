// guest/agent/rpc.hpp — what cz-init does for each request of the host: the file system, clock,
// hostname, DNS and hosts files, mounts, network interfaces, addresses and routes (net.hpp) and
// power. Each RPC turns into a few system calls; a failure becomes an Error answer that names the
// call and its input, never a crash.
//
// Processes are the process table's (processes.hpp), and so are Statistics (a container's cgroup)
// and CopyIn and CopyOut (each runs in a helper process, copy.hpp). Every RPC of agent.proto is
// served.
#pragma once

#include <cz/agent/protocol.hpp>

#include <sys/stat.h>

#include <string>

namespace cz::guest {

// Fills `resp` (whose id is already set) with the answer to `req`. Returns true for Shutdown:
// the caller powers the VM off once the answer is sent.
bool answer_request(const agent::request& req, agent::response& resp);

// The VM's network interfaces' counters (/sys/class/net/*/statistics), in name order, as many as
// `out.links` holds.
void fill_link_statistics(cz_agent_StatisticsResult& out);

// A stat(2) result as the agent answers it (Stat, and CopyOut's container paths).
void fill_stat_result(const struct stat& st, cz_agent_StatResult& out);

// Makes `resp` an Error answer.
void set_error(agent::response& resp, cz_agent_ErrorCode code, int sys_errno,
               const std::string& message);

} // namespace cz::guest
