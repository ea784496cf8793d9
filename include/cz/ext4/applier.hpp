// cz/ext4/applier.hpp — applies OCI image layers (tar, tar+gzip, tar+zstd) into a formatter.
//
// Layers apply in order, each streamed once: decompressor -> tar reader -> formatter, file data
// going straight to its blocks in the image. Nothing on the host is touched but the image file.
// The decompressor runs on a thread of its own a few MiB ahead of the tar reader (see
// read_ahead_source), so decoding and formatting use two cores; errors it meets surface where
// the tar reader reaches them, as they would without the thread.
//
// Semantics (OCI image-spec layer.md, with what containerd and umoci do where it is silent):
//  - `.wh.NAME` removes NAME as lower layers left it; an entry of the same layer is never
//    removed, whatever the tar order (a lower directory that this layer also writes into keeps
//    this layer's entries and loses the lower ones).
//  - `DIR/.wh..wh..opq` hides everything lower layers put under DIR, recursively, but none of the
//    same layer's entries, before or after the marker. Other `.wh..wh.*` names are AUFS
//    metadata and are skipped.
//  - A later entry replaces an earlier one (file over directory, directory over file, symlink
//    over directory); a directory over a directory only takes the new metadata.
//  - Hard links name an earlier entry of this or a lower layer; the target must exist inside the
//    image and not be a directory.
//  - Names are normalised lexically ('/' and "./" stripped, ".." clamped at the root), and every
//    parent component is resolved inside the image: a symlink parent is followed as if the
//    image root were "/", so nothing resolves outside the image. Missing parents are created
//    (mode 0755, owned by root).
//  - xattrs in the user., trusted. and security. namespaces are kept; system.* (POSIX ACLs) and
//    other namespaces are dropped.
#pragma once

#include <cz/core/compression.hpp>
#include <cz/core/read_ahead.hpp>
#include <cz/core/stream.hpp>
#include <cz/ext4/error.hpp>
#include <cz/ext4/formatter.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <system_error>
#include <unordered_set>

namespace cz::ext4 {

struct apply_options {
    // Guards for each layer's decompression (a layer is untrusted input).
    decompression_limits limits{};
    // Decode each layer on a second thread, `read_ahead.buffers` x `read_ahead.buffer_size`
    // bytes ahead of the tar reader; false decodes on the calling thread.
    bool decode_on_thread = true;
    read_ahead_source::options read_ahead{};
};

class layer_applier {
public:
    explicit layer_applier(formatter& f, apply_options options = {}) : f_(&f), opt_(options) {}

    // Applies one layer (compression detected from its first bytes). On error the formatter
    // may hold a partial layer; error_detail() says which layer, entry and offset failed.
    CZ_DECL void apply(source_ref layer, std::error_code& ec);
    void apply(source_ref layer) {
        std::error_code ec;
        apply(layer, ec);
        throw_if(ec, to_string(detail_));
    }

    // {"layer 2: entry 'etc/passwd'", 1536}: to_string() gives "... at offset 1536".
    const error_info& error_detail() const noexcept { return detail_; }
    // Layers applied so far.
    std::size_t layers() const noexcept { return layer_; }

private:
    struct entry_state;
    formatter* f_;
    apply_options opt_;
    std::size_t layer_ = 0;
    error_info detail_;
    // Dirents (parent node, name) this layer created or replaced, and directories on the path
    // of this layer's entries: what a whiteout or opaque marker must not remove.
    std::unordered_set<std::string> created_;
    std::unordered_set<std::string> traversed_;
    std::vector<node_id> opaque_;
};

} // namespace cz::ext4

#if CZ_HEADER_ONLY
#include <cz/ext4/impl/applier.ipp>
#endif
