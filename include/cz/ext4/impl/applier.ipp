// Out-of-line definitions for cz/ext4/applier.hpp.
#pragma once

#include <cz/ext4/applier.hpp>
#include <cz/tar/path.hpp>
#include <cz/tar/reader.hpp>

#include <fmt/format.h>

#include <optional>
#include <string_view>

namespace cz::ext4 {
namespace detail {

inline constexpr std::string_view whiteout_prefix = ".wh.";
inline constexpr std::string_view opaque_marker = ".wh..wh..opq";
inline constexpr int max_symlink_follows = 40; // Linux's MAXSYMLINKS
inline constexpr std::size_t max_path = 4096;

inline std::string dirent_key(node_id parent, std::string_view name) {
    std::string k(reinterpret_cast<const char*>(&parent), sizeof(parent));
    k.append(name);
    return k;
}

inline timestamp from_ns(std::int64_t ns) {
    std::int64_t sec = ns / 1000000000;
    std::int64_t rem = ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        --sec;
    }
    return {sec, std::uint32_t(rem)};
}

inline std::vector<std::string_view> split_path(std::string_view p) {
    std::vector<std::string_view> out;
    std::size_t at = 0;
    while (at <= p.size()) {
        std::size_t slash = p.find('/', at);
        if (slash == p.npos) slash = p.size();
        if (slash > at) out.push_back(p.substr(at, slash - at));
        at = slash + 1;
    }
    return out;
}

} // namespace detail

struct layer_applier::entry_state {
    layer_applier& self;
    formatter& f;
    metadata implicit_md; // for parents created on the way
    bool marking = true;  // record traversed directories (not while resolving a whiteout)

    void mark_created(node_id dir, std::string_view name) {
        self.created_.insert(detail::dirent_key(dir, name));
    }

    // One step from directory `cur` into `name`, following a symlink found there inside the
    // image. Creates a missing directory when `create`. Returns the directory reached.
    node_id step(node_id cur, std::string_view name, bool create, int& follows, std::error_code& ec) {
        if (name == ".") return cur;
        if (name == "..") return f.parent(cur);
        if (marking) self.traversed_.insert(detail::dirent_key(cur, name));
        node_id child = f.lookup(cur, name);
        if (child == no_node) {
            if (!create) {
                ec = errc::not_found;
                return no_node;
            }
            child = f.make_directory(cur, name, implicit_md, ec);
            if (ec) return no_node;
            mark_created(cur, name);
            return child;
        }
        switch (f.type(child)) {
        case file_type::directory: return child;
        case file_type::symlink: {
            if (++follows > detail::max_symlink_follows) {
                ec = errc::bad_layer_entry;
                return no_node;
            }
            std::string target = f.symlink_target(child);
            node_id at = !target.empty() && target[0] == '/' ? formatter::root : cur;
            for (auto part : detail::split_path(target)) {
                at = step(at, part, create, follows, ec);
                if (ec) return no_node;
            }
            return at;
        }
        default: ec = errc::not_a_directory; return no_node;
        }
    }

    // The directory holding the last component of `components`.
    node_id parent_of(const std::vector<std::string_view>& components, bool create,
                      std::error_code& ec) {
        node_id cur = formatter::root;
        int follows = 0;
        for (std::size_t i = 0; i + 1 < components.size(); ++i) {
            cur = step(cur, components[i], create, follows, ec);
            if (ec) return no_node;
        }
        return cur;
    }

    // Removes what lower layers put under `dir`, keeping this layer's entries.
    void hide_lower(node_id dir) {
        for (const auto& name : f.children(dir)) {
            auto key = detail::dirent_key(dir, name);
            bool ours = self.created_.count(key) || self.traversed_.count(key);
            node_id child = f.lookup(dir, name);
            if (!ours) {
                f.remove(dir, name);
            } else if (f.type(child) == file_type::directory) {
                hide_lower(child);
            }
        }
    }

    void whiteout(node_id dir, std::string_view name) {
        auto key = detail::dirent_key(dir, name);
        node_id child = f.lookup(dir, name);
        if (child == no_node) return;
        if (self.created_.count(key) || self.traversed_.count(key)) {
            // This layer wrote `name` (or under it): only lower content goes.
            if (f.type(child) == file_type::directory) hide_lower(child);
            return;
        }
        f.remove(dir, name);
    }
};

CZ_DECL void layer_applier::apply(source_ref layer, std::error_code& ec) {
    ec = {};
    ++layer_;
    created_.clear();
    traversed_.clear();
    detail_ = {fmt::format("layer {}", layer_), std::nullopt};
    decompressing_source dec(layer, decompressing_source::mode::detect, opt_.limits);
    // Destroyed before `dec` (declared after it): its thread reads `dec` until it is joined.
    std::optional<read_ahead_source> ahead;
    source_ref tar_input = dec;
    if (opt_.decode_on_thread) tar_input = ahead.emplace(dec, opt_.read_ahead);
    tar::reader tr(tar_input);
    formatter& f = *f_;
    entry_state st{*this, f, {}};
    st.implicit_md.mode = 0755;

    for (;;) {
        const tar::entry* e = tr.next(ec);
        if (ec) {
            const error_info& at = tr.error_detail(); // a header, or where the bytes stopped
            detail_ = {fmt::format("layer {}: {}", layer_, at.message), at.offset};
            return;
        }
        if (!e) break;
        detail_ = {fmt::format("layer {}: entry '{}'", layer_, e->name), e->offset};
        if (e->type == tar::entry_type::gnu_dumpdir || e->type == tar::entry_type::gnu_volume ||
            e->type == tar::entry_type::gnu_multivol)
            continue;
        std::string path = tar::normalize_path(e->name, tar::dotdot_policy::clamp, ec);
        if (ec) return;
        if (path.size() >= detail::max_path) {
            ec = errc::bad_layer_entry;
            return;
        }
        auto parts = detail::split_path(path);

        metadata md;
        md.mode = e->mode & 07777;
        if (e->uid > 0xffffffffu || e->gid > 0xffffffffu) {
            ec = errc::bad_layer_entry;
            return;
        }
        md.uid = std::uint32_t(e->uid);
        md.gid = std::uint32_t(e->gid);
        md.mtime = detail::from_ns(e->mtime_ns);
        md.atime = e->atime_ns ? detail::from_ns(*e->atime_ns) : md.mtime;
        md.ctime = e->ctime_ns ? detail::from_ns(*e->ctime_ns) : md.mtime;
        md.crtime = md.mtime;
        for (const auto& x : e->xattrs) {
            auto p = split_xattr_name(x.name);
            if (p.index == 0 || p.index == 7) continue; // system.* and unknown namespaces
            bool dup = false;
            for (auto& have : md.xattrs)
                if (have.name == x.name) {
                    have.value = x.value; // a later duplicate wins
                    dup = true;
                }
            if (!dup) md.xattrs.push_back({x.name, x.value});
        }
        st.implicit_md.mtime = st.implicit_md.atime = st.implicit_md.ctime =
            st.implicit_md.crtime = md.mtime;

        if (parts.empty()) { // the root itself ("./")
            if (e->type == tar::entry_type::directory) f.set_metadata(formatter::root, md, ec);
            if (ec) return;
            continue;
        }
        std::string_view name = parts.back();
        // AUFS metadata directories (.wh..wh.plnk, .wh..wh.aufs) and their contents are skipped.
        bool aufs = false;
        for (std::size_t i = 0; i + 1 < parts.size(); ++i)
            aufs = aufs || parts[i].substr(0, 8) == ".wh..wh.";
        if (aufs) continue;

        // Whiteouts.
        if (name.substr(0, detail::whiteout_prefix.size()) == detail::whiteout_prefix) {
            std::error_code pec;
            if (name == detail::opaque_marker) {
                node_id dir = st.parent_of(parts, true, ec);
                if (ec) return;
                st.hide_lower(dir);
                continue;
            }
            if (name.substr(0, 8) == ".wh..wh.") continue; // AUFS metadata
            std::string_view target = name.substr(detail::whiteout_prefix.size());
            if (target.empty() || target == "." || target == "..") {
                ec = errc::bad_layer_entry;
                return;
            }
            st.marking = false;
            node_id dir = st.parent_of(parts, false, pec);
            st.marking = true;
            if (!pec) st.whiteout(dir, target);
            continue;
        }

        node_id dir = st.parent_of(parts, true, ec);
        if (ec) return;
        switch (e->type) {
        case tar::entry_type::directory: f.make_directory(dir, name, md, ec); break;
        case tar::entry_type::regular:
        case tar::entry_type::contiguous: {
            node_id n = f.add_file(dir, name, md, ec);
            if (ec) return;
            if (e->is_sparse()) {
                auto stored = tr.stored_data();
                for (const auto& seg : e->sparse_map) {
                    f.write_file(n, seg.offset, stored, seg.length, ec);
                    if (ec) return;
                }
            } else {
                f.write_file(n, 0, tr, e->size, ec);
            }
            if (!ec) f.set_file_size(n, e->size, ec);
            break;
        }
        case tar::entry_type::symlink:
            md.mode = 0777; // Linux symlinks are always 0777, whatever the archive says
            f.add_symlink(dir, name, e->linkname, md, ec);
            break;
        case tar::entry_type::hard_link: {
            std::string lpath = tar::normalize_path(e->linkname, tar::dotdot_policy::clamp, ec);
            if (ec) return;
            auto lparts = detail::split_path(lpath);
            if (lparts.empty()) {
                ec = errc::bad_layer_entry;
                return;
            }
            std::error_code lec;
            node_id ldir = st.parent_of(lparts, false, lec);
            node_id target = lec ? no_node : f.lookup(ldir, lparts.back());
            if (target == no_node || f.type(target) == file_type::directory) {
                ec = errc::bad_layer_entry;
                return;
            }
            f.add_hard_link(dir, name, target, ec);
            break;
        }
        case tar::entry_type::char_device:
            f.add_special(dir, name, file_type::char_device, md, e->devmajor, e->devminor, ec);
            break;
        case tar::entry_type::block_device:
            f.add_special(dir, name, file_type::block_device, md, e->devmajor, e->devminor, ec);
            break;
        case tar::entry_type::fifo: f.add_special(dir, name, file_type::fifo, md, 0, 0, ec); break;
        default: continue;
        }
        if (ec) return;
        st.mark_created(dir, name);
    }
    detail_ = {fmt::format("layer {}", layer_), std::nullopt};
}

} // namespace cz::ext4
