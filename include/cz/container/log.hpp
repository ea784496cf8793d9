// cz/container/log.hpp — a detached container's output, as its supervisor keeps it
// (<root>/containers/<id>/container.log, and container.log.1 ... .N-1 before it once rotated).
//
// The file is a sequence of records, each a header line and the bytes it announces:
//
//   <nanoseconds since the epoch> <o|e> <length>\n<length bytes>
//
// 'o' is stdout (or the terminal), 'e' stderr. The writer cuts the output at newlines, so a
// record holds at most one line (a line's end is its last byte) and `cz logs --timestamps` and
// `--tail` can work per line; a line longer than one read of the stream spans several records.
// The bytes themselves are kept as they came (no escaping: binary output survives).
//
// Rotation caps the disk a container's output takes: once container.log would pass max_bytes,
// each file moves one number up (the oldest beyond max_files is dropped) and a new
// container.log begins. A reader that follows (`cz logs -f`) notices the rename by the inode and
// finishes the old file before it opens the new one.
//
// decode_log_record is the no-I/O parser (unit-tested, fuzzed); read_log drives it over the
// files.
#pragma once

#include <cz/container/error.hpp>
#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/unique_fd.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

namespace cz::container {

struct log_record {
    std::int64_t time = 0; // nanoseconds since the epoch
    int stream = 1;        // 1 stdout, 2 stderr
    bytes_view data;       // into the decoded buffer
};

// The longest header line (digits, spaces, newline) a reader accepts.
inline constexpr std::size_t max_log_header = 48;
// The largest record a reader accepts.
inline constexpr std::size_t max_log_record = 1u << 20;

// Decodes the record at the front of `in`: returns the bytes it takes, 0 when `in` holds only a
// part of one (need more). errc::bad_state for bytes that are no record, with `*detail` saying
// what is wrong (the caller adds the file and offset).
CZ_DECL std::size_t decode_log_record(bytes_view in, log_record& out, std::error_code& ec,
                                      std::string* detail = nullptr);

// The header of a record of `size` bytes.
CZ_DECL std::string encode_log_header(std::int64_t time, int stream, std::size_t size);

struct log_options {
    std::uint64_t max_bytes = 8u << 20; // per file
    unsigned max_files = 3;             // container.log and up to two rotated ones
};

// Appends records to container.log in `dir`, rotating as described above.
class log_writer {
public:
    log_writer(std::filesystem::path dir, log_options o, std::error_code& ec);
    // Writes `data` from `stream` (1 or 2) as records cut at newlines, stamped `time`.
    void write(int stream, bytes_view data, std::int64_t time, std::error_code& ec);

private:
    void open(std::error_code& ec);
    void rotate(std::error_code& ec);
    void append(const std::string& header, bytes_view data, std::error_code& ec);

    std::filesystem::path dir_;
    log_options opts_;
    unique_fd fd_;
    std::uint64_t size_ = 0;
};

struct log_read_options {
    // The last `tail` lines only (-1: all).
    long tail = -1;
    // Go on with what is written after the end until `still_writing` says no more will come.
    bool follow = false;
    std::function<bool()> still_writing;
};

// Calls `out` with each record of the container's log in `dir`, oldest first. ec: a file that
// cannot be read, or errc::bad_state (`*detail`: which file, at which offset).
CZ_DECL void read_log(const std::filesystem::path& dir, const log_read_options& o,
                      const std::function<void(const log_record&)>& out, std::error_code& ec,
                      std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/log.ipp>
#endif
