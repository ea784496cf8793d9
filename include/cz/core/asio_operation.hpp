// cz/core/asio_operation.hpp — runs a coroutine as an Asio asynchronous operation (needs Asio).
//
// cz's Asio operations (cz/vm's machine, cz/agent's client) are written as C++20 coroutines
// returning (error_code[, value]); their public initiators accept any completion token and
// complete with `void(std::error_code[, T])`:
//
//     template <class CompletionToken>
//     auto async_wait(CompletionToken&& token) {
//         return cz::detail::spawn_operation(executor(), wait_op(),
//         std::forward<CompletionToken>(token));
//     }
//
// An exception escaping the coroutine completes the operation with its error code (a
// std::system_error's), not_enough_memory (bad_alloc) or state_not_recoverable (anything else).
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>

#include <exception>
#include <system_error>
#include <utility>

namespace cz::detail {

inline std::error_code error_from(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::system_error& se) {
        return se.code();
    } catch (const std::bad_alloc&) {
        return std::make_error_code(std::errc::not_enough_memory);
    } catch (...) {
        return std::make_error_code(std::errc::state_not_recoverable);
    }
}

// Completes with void(error_code, T).
template <class T, class Executor, class Token>
auto spawn_operation(Executor ex, asio::awaitable<std::pair<std::error_code, T>> op,
                     Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, T)>(
        [ex](auto handler, asio::awaitable<std::pair<std::error_code, T>> coro) {
            auto handler_ex = asio::get_associated_executor(handler, ex);
            asio::co_spawn(
                ex, std::move(coro),
                asio::bind_executor(
                    handler_ex, [h = std::move(handler)](std::exception_ptr e,
                                                         std::pair<std::error_code, T> r) mutable {
                        if (e) r.first = error_from(e);
                        std::move(h)(r.first, std::move(r.second));
                    }));
        },
        token, std::move(op));
}

// Completes with void(error_code).
template <class Executor, class Token>
auto spawn_operation(Executor ex, asio::awaitable<std::error_code> op, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [ex](auto handler, asio::awaitable<std::error_code> coro) {
            auto handler_ex = asio::get_associated_executor(handler, ex);
            asio::co_spawn(ex, std::move(coro),
                           asio::bind_executor(handler_ex,
                                               [h = std::move(handler)](std::exception_ptr e,
                                                                        std::error_code r) mutable {
                                                   if (e) r = error_from(e);
                                                   std::move(h)(r);
                                               }));
        },
        token, std::move(op));
}

} // namespace cz::detail
