// cz/vm/detail/async.hpp — runs a coroutine as an Asio asynchronous operation.
//
// cz/vm's operations are written as C++20 coroutines returning (error_code[, value]); the public
// initiators accept any completion token and complete with `void(std::error_code[, T])`.
#pragma once

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/awaitable.hpp>
#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>

#include <exception>
#include <system_error>
#include <utility>

namespace cz::vm::detail {

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
auto spawn_operation(Executor ex, asio::awaitable<std::pair<std::error_code, T>> op, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code, T)>(
        [ex](auto handler, asio::awaitable<std::pair<std::error_code, T>> coro) {
            auto handler_ex = asio::get_associated_executor(handler, ex);
            asio::co_spawn(ex, std::move(coro),
                           asio::bind_executor(handler_ex, [h = std::move(handler)](
                                                               std::exception_ptr e,
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
                           asio::bind_executor(handler_ex, [h = std::move(handler)](
                                                               std::exception_ptr e,
                                                               std::error_code r) mutable {
                               if (e) r = error_from(e);
                               std::move(h)(r);
                           }));
        },
        token, std::move(op));
}

} // namespace cz::vm::detail
