// cz/core.hpp — the foundation every cz module stands on: errors, fds, bytes, streams (and
// read-ahead on a thread), sha256, gzip/zstd. Needs fmt, zlib, ISA-L, zstd and BoringSSL's
// libcrypto; no Asio.
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/compression.hpp>
#include <cz/core/config.hpp>
#include <cz/core/error.hpp>
#include <cz/core/read_ahead.hpp>
#include <cz/core/sha256.hpp>
#include <cz/core/size.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/syscall.hpp>
#include <cz/core/unique_fd.hpp>
