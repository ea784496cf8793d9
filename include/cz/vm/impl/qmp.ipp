// Out-of-line definitions for cz/vm/qmp.hpp.
#pragma once

#include <cz/vm/qmp.hpp>

#include <asio/buffer.hpp>
#include <asio/redirect_error.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <cstring>

namespace cz::vm {

CZ_DECL std::size_t parse_qmp_message(bytes_view in, qmp_message& out, std::error_code& ec,
                                      std::size_t max) {
    auto chars = as_chars(in);
    auto nl = chars.find('\n');
    if (nl == std::string_view::npos) {
        ec = chars.size() > max ? errc::qmp_message_too_long : errc::need_more;
        return 0;
    }
    if (nl > max) {
        ec = errc::qmp_message_too_long;
        return 0;
    }
    auto line = chars.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        ec = errc::qmp_bad_message;
        return 0;
    }
    qmp_message m;
    if (auto id = j.find("id"); id != j.end()) {
        if (id->is_number_unsigned()) m.id = id->get<std::uint64_t>();
    }
    if (auto g = j.find("QMP"); g != j.end() && g->is_object()) {
        m.type = qmp_message::kind::greeting;
        m.value = std::move(*g);
    } else if (auto r = j.find("return"); r != j.end()) {
        m.type = qmp_message::kind::reply;
        m.value = std::move(*r);
    } else if (auto e = j.find("error"); e != j.end() && e->is_object()) {
        // { "class": json-string, "desc": json-string }: both are required, and the class is a
        // name QEMU chose (GenericError, CommandNotFound, ...), never empty.
        auto cls = e->find("class");
        auto desc = e->find("desc");
        if (cls == e->end() || !cls->is_string() || cls->get_ref<const std::string&>().empty() ||
            desc == e->end() || !desc->is_string()) {
            ec = errc::qmp_bad_message;
            return 0;
        }
        m.type = qmp_message::kind::error;
        m.name = cls->get<std::string>();
        m.description = desc->get<std::string>();
        m.value = std::move(*e);
    } else if (auto ev = j.find("event"); ev != j.end() && ev->is_string()) {
        // { "event": json-string, "data": json-object, "timestamp": ... }: QEMU names every event
        // (SHUTDOWN, STOP, ...) and "data", when present, is an object. An empty name or other
        // data is not QEMU talking: the message is malformed.
        auto d = j.find("data");
        if (ev->get_ref<const std::string&>().empty() || (d != j.end() && !d->is_object())) {
            ec = errc::qmp_bad_message;
            return 0;
        }
        m.type = qmp_message::kind::event;
        m.name = ev->get<std::string>();
        if (d != j.end()) m.value = std::move(*d);
    } else {
        ec = errc::qmp_bad_message;
        return 0;
    }
    out = std::move(m);
    return nl + 1;
}

CZ_DECL asio::awaitable<std::error_code> qmp_client::read_message(qmp_message& out) {
    std::error_code ec;
    while (true) {
        ec.clear();
        auto used = parse_qmp_message(as_bytes(buffer_), out, ec);
        if (!ec) {
            buffer_.erase(0, used);
            co_return ec;
        }
        if (ec != errc::need_more) co_return ec;
        char chunk[4096];
        ec.clear();
        auto n = co_await socket_.async_read_some(asio::buffer(chunk),
                                                  asio::redirect_error(asio::use_awaitable, ec));
        if (ec) co_return ec;
        buffer_.append(chunk, n);
    }
}

CZ_DECL std::error_code qmp_client::send(const nlohmann::json& message) {
    std::string line = message.dump();
    line += "\r\n";
    std::error_code ec;
    // Commands are small; a blocking write keeps them whole and in order without a queue.
    asio::write(socket_, asio::buffer(line), ec);
    return ec;
}

CZ_DECL asio::awaitable<std::error_code> qmp_client::handshake() {
    qmp_message m;
    if (auto ec = co_await read_message(m)) {
        closed_ = true;
        co_return ec == asio::error::eof ? make_error_code(errc::qmp_handshake_failed) : ec;
    }
    if (m.type != qmp_message::kind::greeting) co_return errc::qmp_handshake_failed;
    greeting_ = std::move(m.value);
    if (auto ec = send({{"execute", "qmp_capabilities"}})) co_return ec;
    // No events are sent before capabilities are negotiated, so the next message is the reply.
    if (auto ec = co_await read_message(m)) {
        closed_ = true;
        co_return ec == asio::error::eof ? make_error_code(errc::qmp_handshake_failed) : ec;
    }
    if (m.type != qmp_message::kind::reply) {
        error_detail_ = {m.name + ": " + m.description, std::nullopt};
        co_return errc::qmp_handshake_failed;
    }
    co_return std::error_code{};
}

CZ_DECL void qmp_client::fail_pending(std::error_code ec) {
    for (auto& [id, p] : pending_) {
        p->ec = ec;
        p->done.cancel();
    }
    pending_.clear();
}

CZ_DECL asio::awaitable<std::error_code> qmp_client::run() {
    std::error_code ec;
    while (true) {
        qmp_message m;
        ec = co_await read_message(m);
        if (ec) break;
        if (m.type == qmp_message::kind::event) {
            if (on_event_) on_event_(m);
            continue;
        }
        if (!m.id) continue; // a reply to nobody (we always send ids): ignore
        auto it = pending_.find(*m.id);
        if (it == pending_.end()) continue;
        auto* p = it->second;
        pending_.erase(it);
        if (m.type == qmp_message::kind::error) {
            error_detail_ = {m.name + ": " + m.description, std::nullopt};
            p->ec = errc::qmp_command_failed;
        } else if (m.type == qmp_message::kind::reply) {
            p->result = std::move(m.value);
        } else {
            p->ec = errc::qmp_bad_message;
        }
        p->done.cancel();
    }
    closed_ = true;
    fail_pending(errc::qmp_closed);
    // The end of the stream is how QEMU says goodbye; a reset is the same thing said rudely.
    if (ec == asio::error::eof || ec == asio::error::connection_reset) ec.clear();
    co_return ec;
}

CZ_DECL asio::awaitable<std::pair<std::error_code, nlohmann::json>> qmp_client::execute(
    std::string command, nlohmann::json arguments) {
    if (closed_ || !socket_.is_open()) co_return std::pair{make_error_code(errc::qmp_closed), nlohmann::json()};
    auto id = next_id_++;
    nlohmann::json message = {{"execute", std::move(command)}, {"id", id}};
    if (!arguments.is_null()) message["arguments"] = std::move(arguments);
    pending p{asio::steady_timer(socket_.get_executor(), asio::steady_timer::time_point::max()), {}, {}};
    pending_[id] = &p;
    if (auto ec = send(message)) {
        pending_.erase(id);
        co_return std::pair{ec, nlohmann::json()};
    }
    std::error_code wait_ec;
    co_await p.done.async_wait(asio::redirect_error(asio::use_awaitable, wait_ec));
    // The timer only ends by cancellation: from run() with the outcome in p, or from outside.
    if (pending_.erase(id) != 0 && !p.ec) p.ec = asio::error::operation_aborted;
    co_return std::pair{p.ec, std::move(p.result)};
}

} // namespace cz::vm
