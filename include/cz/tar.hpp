// cz/tar.hpp — streaming tar: a reader for every format image layers come in (v7, ustar, pax,
// GNU, sparse files), a pax writer with a deterministic mode, and path hygiene. Depends on
// cz/core only. Nothing here touches the host file system.
//
// Reading a (possibly compressed) layer straight from a file, pipe or socket:
//
//     cz::fd_source file(fd);
//     cz::decompressing_source plain(file);             // <cz/core/compression.hpp>: gzip/zstd
//                                                       // detected, or plain tar (Meson:
//                                                       // cz-core-compression)
//     cz::tar::reader r(plain);
//     std::error_code ec;
//     while (const cz::tar::entry* e = r.next(ec)) {   // nullptr + ec on a bad archive
//         auto path = cz::tar::normalize_path(e->name, cz::tar::dotdot_policy::refuse, ec);
//         if (e->is_file()) cz::copy(r, my_sink, ec);  // r reads e->size bytes, holes as zeros
//         // or r.stored_data() + e->sparse_map to write holes yourself
//     }
//     // ec clear here: end of archive. Otherwise r.error_detail() names the bad header's offset.
//
// An archive already in memory (a mapped file): cz::tar::reader r(bytes); r.read_view(max, ec)
// then lends views of the archive itself, with no copy.
// Writing: cz::tar::writer (writer.hpp). Parsing without I/O: cz::tar::parser (parser.hpp).
// examples/tar_list.cpp lists an archive as `tar -tvf` does, in 80 lines.
#pragma once

#include <cz/tar/entry.hpp>
#include <cz/tar/error.hpp>
#include <cz/tar/header.hpp>
#include <cz/tar/parser.hpp>
#include <cz/tar/path.hpp>
#include <cz/tar/reader.hpp>
#include <cz/tar/writer.hpp>
