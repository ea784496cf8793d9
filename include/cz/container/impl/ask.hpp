// cz/container/impl/ask.hpp — an agent RPC whose answer comes back as a value, error or not, so
// that several can be awaited together with Asio's `&&` (one round trip for requests cz-init
// answers in order). Used by the run (run.ipp) and the supervisor's exec (supervisor.ipp).
#pragma once

#include <cz/agent/client.hpp>

#include <asio/awaitable.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace cz::container::detail {

struct rpc_answer {
    std::error_code ec;
    agent::response r;
};

// `rpc` must outlive the await (the caller's local, as in every use).
template <class Rpc>
asio::awaitable<rpc_answer> ask(agent::client& client, const Rpc& rpc) {
    auto [ec, r] =
        co_await client.async_call(rpc, asio::experimental::as_tuple(asio::use_awaitable));
    co_return rpc_answer{ec, std::move(r)};
}

} // namespace cz::container::detail
