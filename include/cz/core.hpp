// cz/core.hpp — the foundation every cz module stands on: errors, fds, bytes, streams (and
// read-ahead on a thread), sizes, the syscall seam. Needs fmt (and threads); no Asio.
//
// Two pieces of cz/core stand apart because they need libraries of their own; include them, and
// ask Meson for their dependency, only where they are used:
//   <cz/core/compression.hpp>  gzip/zstd streams   dependency('cz-core-compression'): ISA-L,
//                                                   zlib, zstd
//   <cz/core/sha256.hpp>       OCI sha256 digests  dependency('cz-core-sha256'): BoringSSL
#pragma once

#include <cz/core/bytes.hpp>
#include <cz/core/config.hpp>
#include <cz/core/error.hpp>
#include <cz/core/read_ahead.hpp>
#include <cz/core/size.hpp>
#include <cz/core/stream.hpp>
#include <cz/core/syscall.hpp>
#include <cz/core/unique_fd.hpp>
