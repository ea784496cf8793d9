// Out-of-line definitions for cz/container/log.hpp.
#pragma once

#include <cz/container/log.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <thread>
#include <vector>

namespace cz::container {

namespace detail {

inline std::size_t log_fail(std::error_code& ec, std::string* detail, std::string what) {
    ec = make_error_code(errc::bad_state);
    if (detail) *detail = std::move(what);
    return 0;
}

// A decimal number of at most 19 digits, all of `text`.
inline bool parse_decimal(std::string_view text, std::uint64_t& out) {
    if (text.empty() || text.size() > 19) return false;
    out = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        out = out * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return true;
}

inline std::filesystem::path log_file(const std::filesystem::path& dir, unsigned n) {
    return dir / (n == 0 ? std::string("container.log") : "container.log." + std::to_string(n));
}

} // namespace detail

CZ_DECL std::size_t decode_log_record(bytes_view in, log_record& out, std::error_code& ec,
                                      std::string* detail) {
    ec.clear();
    auto chars = as_chars(in);
    auto nl = chars.substr(0, max_log_header).find('\n');
    if (nl == std::string_view::npos) {
        if (chars.size() >= max_log_header)
            return detail::log_fail(ec, detail, "record header longer than 48 bytes");
        return 0;
    }
    auto header = chars.substr(0, nl);
    auto sp1 = header.find(' ');
    auto sp2 = sp1 == std::string_view::npos ? sp1 : header.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos)
        return detail::log_fail(ec, detail, "record header is not \"TIME STREAM LENGTH\"");
    std::uint64_t time = 0, length = 0;
    if (!detail::parse_decimal(header.substr(0, sp1), time) ||
        time > static_cast<std::uint64_t>(INT64_MAX))
        return detail::log_fail(ec, detail, "record time is not a number of nanoseconds");
    auto stream = header.substr(sp1 + 1, sp2 - sp1 - 1);
    if (stream != "o" && stream != "e")
        return detail::log_fail(ec, detail, "record stream is not o or e");
    if (!detail::parse_decimal(header.substr(sp2 + 1), length))
        return detail::log_fail(ec, detail, "record length is not a number");
    if (length > max_log_record)
        return detail::log_fail(ec, detail,
                                "record length " + std::to_string(length) + " above 1 MiB");
    // SAFETY: length <= max_log_record, and nl < max_log_header: no overflow below.
    std::size_t total = nl + 1 + static_cast<std::size_t>(length);
    if (in.size() < total) return 0;
    out.time = static_cast<std::int64_t>(time);
    out.stream = stream == "o" ? 1 : 2;
    out.data = in.subspan(nl + 1, static_cast<std::size_t>(length));
    return total;
}

CZ_DECL std::string encode_log_header(std::int64_t time, int stream, std::size_t size) {
    return std::to_string(time) + (stream == 2 ? " e " : " o ") + std::to_string(size) + "\n";
}

CZ_DECL log_writer::log_writer(std::filesystem::path dir, log_options o, std::error_code& ec)
    : dir_(std::move(dir)), opts_(o) {
    if (opts_.max_files == 0) opts_.max_files = 1;
    open(ec);
}

CZ_DECL void log_writer::open(std::error_code& ec) {
    ec.clear();
    auto path = detail::log_file(dir_, 0);
    fd_.reset(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
    if (!fd_) {
        ec = last_system_error();
        return;
    }
    struct stat st {};
    size_ = ::fstat(fd_.get(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

CZ_DECL void log_writer::rotate(std::error_code& ec) {
    fd_.reset();
    // The oldest goes; each other moves one number up.
    ::unlink(detail::log_file(dir_, opts_.max_files - 1).c_str());
    for (unsigned n = opts_.max_files - 1; n > 0; --n)
        ::rename(detail::log_file(dir_, n - 1).c_str(), detail::log_file(dir_, n).c_str());
    if (opts_.max_files == 1) ::unlink(detail::log_file(dir_, 0).c_str());
    open(ec);
}

CZ_DECL void log_writer::append(const std::string& header, bytes_view data, std::error_code& ec) {
    std::uint64_t bytes = header.size() + data.size();
    if (size_ > 0 && size_ + bytes > opts_.max_bytes) {
        rotate(ec);
        if (ec) return;
    }
    // One writev: a reader sees the header and its bytes together, or neither, almost always
    // (and waits for the rest when not).
    iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                    {const_cast<std::byte*>(data.data()), data.size()}};
    std::size_t done = 0;
    while (done < bytes) {
        // SAFETY: done < header.size() + data.size(); the iovecs are advanced within them.
        iovec cur[2];
        int n_iov = 0;
        if (done < header.size()) {
            cur[n_iov++] = {const_cast<char*>(header.data()) + done, header.size() - done};
            cur[n_iov++] = iov[1];
        } else {
            std::size_t off = done - header.size();
            cur[n_iov++] = {const_cast<std::byte*>(data.data()) + off, data.size() - off};
        }
        ssize_t n = ::writev(fd_.get(), cur, n_iov);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ec = last_system_error();
            return;
        }
        done += static_cast<std::size_t>(n);
    }
    size_ += bytes;
}

CZ_DECL void log_writer::write(int stream, bytes_view data, std::int64_t time,
                               std::error_code& ec) {
    ec.clear();
    if (!fd_) open(ec);
    if (ec) return;
    while (!data.empty()) {
        auto chars = as_chars(data);
        auto nl = chars.find('\n');
        std::size_t n = nl == std::string_view::npos ? data.size() : nl + 1;
        append(encode_log_header(time, stream, n), data.first(n), ec);
        if (ec) return;
        data = data.subspan(n);
    }
}

namespace detail {

struct owned_record {
    std::int64_t time;
    int stream;
    std::string data;
};

// Decodes the records at the front of `buf` into `out`, removing them from it; what is left is
// a record's beginning. `where` and `offset` name the position in errors.
inline void decode_records(std::string& buf, std::vector<owned_record>& out,
                           const std::filesystem::path& where, std::uint64_t& offset,
                           std::error_code& ec, std::string* detail) {
    std::size_t pos = 0;
    for (;;) {
        log_record r;
        std::string why;
        auto n = decode_log_record(as_bytes(std::string_view(buf).substr(pos)), r, ec, &why);
        if (ec) {
            if (detail)
                *detail = where.string() + ": offset " + std::to_string(offset) + ": " + why;
            return;
        }
        if (n == 0) break;
        out.push_back({r.time, r.stream, std::string(as_chars(r.data))});
        pos += n;
        offset += n;
    }
    buf.erase(0, pos);
}

// Appends what `fd` has from where it is to `buf`.
inline void read_more(int fd, std::string& buf, std::error_code& ec) {
    char chunk[65536];
    for (;;) {
        ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            ec = last_system_error();
            return;
        }
        if (n == 0) return;
        buf.append(chunk, static_cast<std::size_t>(n));
    }
}

inline void emit(const std::vector<owned_record>& recs, std::size_t from,
                 const std::function<void(const log_record&)>& out) {
    for (std::size_t i = from; i < recs.size(); ++i)
        out(log_record{recs[i].time, recs[i].stream, as_bytes(recs[i].data)});
}

} // namespace detail

CZ_DECL void read_log(const std::filesystem::path& dir, const log_read_options& o,
                      const std::function<void(const log_record&)>& out, std::error_code& ec,
                      std::string* detail) {
    ec.clear();
    std::vector<detail::owned_record> recs;
    unsigned oldest = 0;
    while (::access(detail::log_file(dir, oldest + 1).c_str(), F_OK) == 0)
        ++oldest;
    // The rotated files, oldest first: complete.
    for (unsigned n = oldest; n > 0; --n) {
        auto path = detail::log_file(dir, n);
        unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd) continue; // rotated away meanwhile
        std::string buf;
        std::uint64_t offset = 0;
        detail::read_more(fd.get(), buf, ec);
        if (!ec) detail::decode_records(buf, recs, path, offset, ec, detail);
        if (ec) return;
    }
    // The current file: kept open to follow it.
    auto path = detail::log_file(dir, 0);
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::string buf;
    std::uint64_t offset = 0;
    if (fd) {
        detail::read_more(fd.get(), buf, ec);
        if (!ec) detail::decode_records(buf, recs, path, offset, ec, detail);
        if (ec) return;
    }
    std::size_t from = 0;
    if (o.tail >= 0) {
        // Back from the end over `tail` line ends (a last line without its end counts too).
        std::size_t lines = 0, i = recs.size();
        bool partial =
            !recs.empty() && (recs.back().data.empty() || recs.back().data.back() != '\n');
        if (partial) lines = 1;
        while (i > 0) {
            const auto& d = recs[i - 1].data;
            bool ends = !d.empty() && d.back() == '\n';
            if (ends && lines == static_cast<std::size_t>(o.tail)) break;
            if (ends) ++lines;
            --i;
        }
        if (o.tail == 0) i = recs.size();
        from = i;
    }
    detail::emit(recs, from, out);
    if (!o.follow) return;

    for (;;) {
        recs.clear();
        bool more = o.still_writing && o.still_writing();
        if (fd) {
            detail::read_more(fd.get(), buf, ec);
            if (!ec) detail::decode_records(buf, recs, path, offset, ec, detail);
            if (ec) return;
            detail::emit(recs, 0, out);
        }
        // Rotated (or first made): the name is another file now; this one is read to its end.
        struct stat now {
        }, held{};
        if (::stat(path.c_str(), &now) == 0 &&
            (!fd || ::fstat(fd.get(), &held) != 0 || now.st_ino != held.st_ino)) {
            fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
            buf.clear();
            offset = 0;
            continue;
        }
        if (!more) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

} // namespace cz::container
