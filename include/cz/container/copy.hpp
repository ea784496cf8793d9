// cz/container/copy.hpp — `cz cp`: files between the host and a running detached container, as
// `docker cp` copies them. Tar streams go through the container's supervisor (the control
// protocol's path_stat, copy_out and copy_in, cz/container/control.hpp) to cz-init's CopyIn and
// CopyOut, which resolve the container's paths inside its root (its symlinks never lead out).
//
// docker's rules, SRC to DEST:
//   SRC a file:  DEST missing -> DEST is that file (its directory must exist; a DEST that ends in
//                "/" is an error); DEST a file -> overwritten; DEST a directory -> DEST/basename.
//   SRC a dir:   DEST missing -> made, with SRC's contents (its parent must exist); DEST a file ->
//                error; DEST a directory -> DEST/basename(SRC), or with SRC ending in "/." the
//                contents of SRC straight into DEST.
//   "-" as SRC: a tar archive on stdin unpacked into the container's directory DEST; as DEST:
//   SRC's archive on stdout.
// A symlink as SRC is copied as a symlink (follow_link: what it points to; SRC ending in "/" or
// "/." follows it too); a DEST that is a symlink is followed.
//
// The host side trusts nothing the container sends: extract_untrusted() writes only under the
// directory it was given. Member names are normalised by cz/tar's rules and one that climbs out
// with ".." is an error; every member's directory is resolved with openat2(RESOLVE_BENEATH), so a
// symlink (the archive's own or one already there) that leads out of the destination, or an
// absolute one, is refused rather than written through; an existing non-directory in a member's
// place is unlinked and replaced, never written into; a hard link must name a member inside.
// Files are the invoking user's (as docker cp's are): owners in the archive are not applied, and
// setuid/setgid bits are dropped. Devices are skipped (docker as root would make them; a
// container has no business making device nodes on its host), as are sockets. Sparse members are
// written with holes. Sizes are those the archive carries; a member whose data ends early is a
// truncated archive, reported with its name.
//
// Example:
//   std::error_code ec;
//   std::string why;
//   cz::container::copy_from_container(root, "web", "/etc/nginx", "./nginx", {}, ec, &why);
//   cz::container::copy_to_container(root, "web", "./site/.", "/usr/share/html", {}, ec, &why);
#pragma once

#include <cz/container/control.hpp>
#include <cz/core/stream.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace cz::container {

// --- the host's file system side ----------------------------------------------------------------

// Members of an archive renamed on the way in: a member `from` (or under it, "from/...") lands as
// `to` (or "to/..."). `from` "" takes every member, each put under `to`; `to` "" puts them
// straight into the directory. A member outside `from` is an error.
struct copy_rename {
    std::string from;
    std::string to;
};

// Unpacks the untrusted archive read from `archive` into the existing host directory `dir`, as
// the banner says. Stops at the first bad member or failed call: ec, and `*detail` naming the
// member and its offset.
CZ_DECL void extract_untrusted(source_ref archive, const std::filesystem::path& dir,
                               const copy_rename& rename, std::error_code& ec,
                               std::string* detail = nullptr);

struct host_archive_options {
    // Follow `path` itself when it is a symlink (below it, symlinks are always stored).
    bool follow = false;
    // Keep the files' owners (docker cp -a); else every member is 0:0, root's in the container.
    bool keep_owner = false;
};

// Writes the host path `path` (a directory with everything under it, or one file, symlink, fifo
// or device) to `out` as a tar archive whose members are named `name` and "name/...": `name` ""
// names a directory's members after its children alone. Sockets are skipped. A file that
// shrinks while it is read is padded with zeros to the size its header announced.
CZ_DECL void archive_host_path(const std::filesystem::path& path, std::string_view name,
                               sink_ref out, const host_archive_options& options,
                               std::error_code& ec, std::string* detail = nullptr);

// --- the client side (blocking, over the supervisor's control socket) --------------------------

// What `path` is in the running container (symlinks followed); exists false when nothing is
// there.
CZ_DECL path_info stat_in_container(const std::filesystem::path& root, std::string_view ref,
                                    const std::string& path, std::error_code& ec,
                                    std::string* detail = nullptr);

// The tar archive of the container's `path` (members named after its last component; a path
// ending in "/." archives a directory's contents), written to `out` as it arrives.
CZ_DECL void copy_out_archive(const std::filesystem::path& root, std::string_view ref,
                              const std::string& path, sink_ref out, std::error_code& ec,
                              std::string* detail = nullptr);

// Unpacks the tar archive read from `archive` into the container's directory `dir` (which must
// exist: docker's rule for `cz cp - C:DIR`). The archive's owners and modes are applied.
CZ_DECL void copy_in_archive(const std::filesystem::path& root, std::string_view ref,
                             const std::string& dir, source_ref archive, std::error_code& ec,
                             std::string* detail = nullptr);

struct copy_options {
    // Follow SRC when it is a symlink (docker cp -L).
    bool follow_link = false;
    // Keep owners of host files copied in (docker cp -a); else they are root's.
    bool archive = false;
};

// `cz cp CONTAINER:SRC HOSTDEST` by docker's rules (the banner). Errors name the container and
// the path: errc::copy_failed for a path that is not there or a copy the rules refuse.
CZ_DECL void copy_from_container(const std::filesystem::path& root, std::string_view ref,
                                 const std::string& src, const std::filesystem::path& dest,
                                 const copy_options& options, std::error_code& ec,
                                 std::string* detail = nullptr);

// `cz cp HOSTSRC CONTAINER:DEST` by docker's rules.
CZ_DECL void copy_to_container(const std::filesystem::path& root, std::string_view ref,
                               const std::filesystem::path& src, const std::string& dest,
                               const copy_options& options, std::error_code& ec,
                               std::string* detail = nullptr);

} // namespace cz::container

#if CZ_HEADER_ONLY
#include <cz/container/impl/copy.ipp>
#endif
