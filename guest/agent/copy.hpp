// guest/agent/copy.hpp — the file system half of CopyIn and CopyOut: a tar stream unpacked under a
// directory of the VM, and a path of the VM packed into a tar stream (cz/tar reads and writes
// them). Both block; cz-init runs each in a helper process of its own (processes.hpp), so a slow
// disk stalls no other stream, and a fault in the code that reads the host's archive cannot take
// PID 1 down with it.
//
// Unpacking never writes outside the target: member names are normalised and one that climbs
// above the target with ".." is refused (the archive is bad, not clamped); every path is then
// resolved with openat2(RESOLVE_IN_ROOT) under the target, so an absolute name or a symlink in the
// tree (one the archive made, or one that was there) resolves as if the target were "/". Files
// are created afresh (an existing non-directory is replaced, never written through); a hard
// link must name a member inside the target. Ownership, modes (setuid bits included: cz-init is
// root, as `tar --same-owner --same-permissions` as root), modification times (directories' last,
// once their contents are in) are applied; xattrs are not (yet). The target's own metadata is
// left as it is. Like GNU tar, the archive ends at its first zero block; the rest of the stream
// is read and dropped, so that the host's writes complete.
//
// Packing names the members after the path's last component (`tar -C dirname basename`), walks
// directories without following symlinks (a symlink is a member, at any depth), stores a file's
// further hard links as links to its first, and skips sockets. A file that shrinks while it is
// read is padded with zeros to the size its header announced, as GNU tar does.
#pragma once

#include <cz/agent/protocol.hpp>
#include <cz/core/stream.hpp>

#include <string>

#include <sys/stat.h>

namespace cz::guest {

// Why a copy failed: the answer's code and errno (0 when no system call failed), and a message
// that names the member or path.
struct copy_error {
    cz_agent_ErrorCode code = cz_agent_ErrorCode_ERROR_UNSPECIFIED;
    int sys_errno = 0;
    std::string message;
    explicit operator bool() const noexcept { return code != cz_agent_ErrorCode_ERROR_UNSPECIFIED; }
};

// Unpacks the archive read from `archive` under the absolute directory `target` (created with its
// parents when missing). Returns false with `err` set on the first bad member or failed call.
// `target` is resolved inside `root` as if `root` were "/" (a container's root: its symlinks and
// ".." never lead out of it).
bool extract_tar(source_ref archive, const std::string& target, copy_error& err,
                 const std::string& root = "/");

// Writes the absolute `path` (a directory with everything under it, or one file, symlink, device
// or fifo) to `out` as a pax archive, then finishes it. Returns false with `err` set. The
// directory `path` is in is resolved inside `root` as extract_tar's target is.
bool archive_path(const std::string& path, sink_ref out, copy_error& err,
                  const std::string& root = "/");

// stat(2) (lstat(2) unless `follow`) of the absolute `path` resolved inside `root`.
bool stat_path(const std::string& path, bool follow, const std::string& root, struct ::stat& st,
               copy_error& err);

} // namespace cz::guest
