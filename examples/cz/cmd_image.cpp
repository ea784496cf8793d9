// cz image ... and cz store ...: cz/oci's image store and content store from the command line.
//
//   cz [--root DIR] image ls [--json]
//   cz image inspect REF [--platform P] [--json]
//   cz image rm REF...
//   cz image tag SRC DST
//   cz image load PATH [--name NAME]      (OCI layout dir, skopeo dir:, OCI archive, docker save)
//   cz image save REF... -o FILE [--format oci|docker] [--platform P]
//   cz image import ROOTFS.tar NAME [--platform P] [--change 'CMD ["sh"]']...
//   cz image pull REF [--platform P] [--insecure REGISTRY] [--quiet]   (cmd_image_pull.cpp)
//   cz store verify
//   cz store gc [--grace DURATION] [--dry-run]
//
// The store is <root>/content, a plain OCI image layout whose references are
// org.opencontainers.image.ref.name annotations (cz/oci/store.hpp), so what these commands show
// is what `skopeo inspect oci:<root>/content:NAME` and `umoci` see. A REF is found as it is
// stored first, then by its normalised form: `busybox` finds docker.io/library/busybox:latest.
#include "cli.hpp"

#include <cz/oci/archive.hpp>
#include <cz/oci/import.hpp>
#include <cz/oci/platform.hpp>
#include <cz/oci/reference.hpp>
#include <cz/oci/store.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace cz::cli {

namespace {

// The content store and the image store under the state root. Neither copied nor moved: the
// image store points at the content store.
class stores {
public:
    stores() : root_(state_root()) {
        std::error_code ec;
        std::string why;
        content_ = oci::content_store::open(root_, ec, &why);
        if (ec) throw_error(ec, "store {}: {}", root_.string(), why);
    }
    stores(const stores&) = delete;
    stores& operator=(const stores&) = delete;

    const std::filesystem::path& root() const noexcept { return root_; }
    const oci::content_store& content() const noexcept { return content_; }
    const oci::image_store& images() const noexcept { return images_; }

    // The entry REF names (as stored, else normalised); the error names REF.
    oci::image_entry find(const std::string& ref) const {
        std::error_code ec;
        std::string why;
        auto entry = images_.find(ref, ec, &why);
        if (ec) throw_error(ec, "{}", why.empty() ? ref : why);
        return entry;
    }

    // A manifest, index or config of at most max_document_size bytes, checked against `d`.
    std::string read_document(const oci::descriptor& d) const {
        std::error_code ec;
        std::string why;
        auto bytes = content_.read(d, oci::max_document_size, ec, &why);
        if (ec) throw_error(ec, "{}: {}", d.digest.str(), why);
        return bytes;
    }

private:
    std::filesystem::path root_;
    oci::content_store content_;
    oci::image_store images_{content_};
};

// 0 B, 812 B, 4.2 KiB, 37 MiB: one decimal below 10 units, none above.
std::string human_size(std::uint64_t bytes) {
    static constexpr const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) return fmt::format("{} B", bytes);
    double v = static_cast<double>(bytes) / 1024;
    std::size_t u = 0;
    while (v >= 1024 && u + 1 < std::size(units)) {
        v /= 1024;
        ++u;
    }
    return v < 10 ? fmt::format("{:.1f} {}", v, units[u]) : fmt::format("{:.0f} {}", v, units[u]);
}

// The first 12 hex digits of a digest, as docker shows image IDs.
std::string short_digest(const digest& d) {
    return d.hex().substr(0, 12);
}

std::string display_name(const oci::image_entry& e) {
    return e.name.empty() ? "<none>" : e.name;
}

// What `image ls` shows of one entry, read from the store without failing: an image whose
// documents cannot be read is still listed, with the reason.
struct image_summary {
    // Bytes of every blob the entry reaches that the store holds, each counted once: the
    // manifests, configs and (compressed) layers as stored.
    std::uint64_t size = 0;
    // A manifest: its config's os/arch[/variant]. An index: those of its entries.
    std::vector<std::string> platforms;
    std::string created; // a manifest's config's `created`
    // The first blob that is missing (a manifest's config or layer) or unreadable, and why.
    std::string problem;
};

// How a blob is reached, for summarize(): the tagged document, an index's entry (which a
// partial pull may leave out), or a manifest's config or layer (which a whole image has).
enum class reached_as { top, index_entry, config, layer };

void summarize(const oci::content_store& cs, const oci::descriptor& d, int depth, reached_as how,
               std::set<digest>& seen, image_summary& s) {
    if (!seen.insert(d.digest).second) return;
    if (!cs.contains(d.digest)) {
        if (how != reached_as::index_entry && s.problem.empty())
            s.problem = fmt::format("{} {}: not in the store",
                                    how == reached_as::layer    ? "layer"
                                    : how == reached_as::config ? "config"
                                                                : "target",
                                    d.digest.str());
        return;
    }
    bool top = how == reached_as::top;
    if (d.size > 0) s.size += static_cast<std::uint64_t>(d.size);
    bool is_index = oci::media_type::is_index(d.media_type);
    if (!is_index && !oci::media_type::is_manifest(d.media_type)) return;
    if (depth == 8) return; // as deep as image_store::resolve follows
    std::error_code ec;
    std::string why;
    auto bytes = cs.read(d, oci::max_document_size, ec, &why);
    if (ec) {
        if (s.problem.empty()) s.problem = fmt::format("{}: {}", d.digest.str(), why);
        return;
    }
    if (is_index) {
        auto ix = oci::parse_index(std::move(bytes), ec, &why);
        if (ec) {
            if (s.problem.empty()) s.problem = fmt::format("index {}: {}", d.digest.str(), why);
            return;
        }
        for (const auto& m : ix.manifests) {
            if (top && m.platform) {
                auto p = oci::format(*m.platform);
                if (std::find(s.platforms.begin(), s.platforms.end(), p) == s.platforms.end())
                    s.platforms.push_back(p);
            }
            summarize(cs, m, depth + 1, reached_as::index_entry, seen, s);
        }
        return;
    }
    auto m = oci::parse_manifest(std::move(bytes), ec, &why);
    if (ec) {
        if (s.problem.empty()) s.problem = fmt::format("manifest {}: {}", d.digest.str(), why);
        return;
    }
    if (top && oci::media_type::is_config(m.config.media_type) && cs.contains(m.config.digest)) {
        auto config_bytes = cs.read(m.config, oci::max_document_size, ec, &why);
        auto c = ec ? oci::image_config{} : oci::parse_image_config(config_bytes, ec, &why);
        if (ec) {
            if (s.problem.empty())
                s.problem = fmt::format("config {}: {}", m.config.digest.str(), why);
        } else {
            oci::platform p;
            p.os = c.os;
            p.architecture = c.architecture;
            p.variant = c.variant;
            s.platforms.push_back(oci::format(p));
            s.created = c.created;
        }
    }
    summarize(cs, m.config, depth + 1, reached_as::config, seen, s);
    for (const auto& layer : m.layers)
        summarize(cs, layer, depth + 1, reached_as::layer, seen, s);
}

image_summary summarize(const oci::content_store& cs, const oci::descriptor& d) {
    image_summary s;
    std::set<digest> seen;
    summarize(cs, d, 0, reached_as::top, seen, s);
    return s;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += sep;
        out += p;
    }
    return out;
}

// A JSON document the store holds, parsed for output (it was parsed and checked once already).
nlohmann::json as_json(const std::string& bytes) {
    return nlohmann::json::parse(bytes, nullptr, false);
}

// ---------------------------------------------------------------------------------------------
// cz image ls

struct image_ls_options {
    bool json = false;
};

int run_image_ls(const image_ls_options& o) {
    stores s;
    std::error_code ec;
    std::string why;
    auto entries = s.images().list(ec, &why);
    if (ec) throw_error(ec, "store {}: {}", s.root().string(), why);

    if (o.json) {
        auto out = nlohmann::json::array();
        for (const auto& e : entries) {
            auto sum = summarize(s.content(), e.target);
            nlohmann::json j = {{"name", e.name},
                                {"digest", e.target.digest.str()},
                                {"mediaType", e.target.media_type},
                                {"size", sum.size},
                                {"platforms", sum.platforms}};
            if (!sum.created.empty()) j["created"] = sum.created;
            if (!sum.problem.empty()) j["problem"] = sum.problem;
            out.push_back(std::move(j));
        }
        fmt::print("{}\n", out.dump(2));
        return exit_ok;
    }

    struct row {
        std::string name, digest, size, platforms;
    };
    std::vector<row> rows{{"REFERENCE", "DIGEST", "SIZE", "PLATFORMS"}};
    for (const auto& e : entries) {
        auto sum = summarize(s.content(), e.target);
        rows.push_back(
            {display_name(e), short_digest(e.target.digest), human_size(sum.size),
             join(sum.platforms, ",") + (sum.problem.empty() ? "" : "  (" + sum.problem + ")")});
    }
    std::size_t name_w = 0, digest_w = 0, size_w = 0;
    for (const auto& r : rows) {
        name_w = std::max(name_w, r.name.size());
        digest_w = std::max(digest_w, r.digest.size());
        size_w = std::max(size_w, r.size.size());
    }
    for (const auto& r : rows)
        fmt::print("{:<{}}  {:<{}}  {:>{}}  {}\n", r.name, name_w, r.digest, digest_w, r.size,
                   size_w, r.platforms);
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz image inspect

struct image_inspect_options {
    std::string ref;
    std::string platform; // empty: the entry as it is (an index stays an index)
    bool json = false;
};

void print_descriptor_line(const oci::descriptor& d, const oci::content_store& cs) {
    fmt::print("  {}  {:>9}  {}{}\n", d.digest.str(), human_size(std::uint64_t(d.size)),
               d.media_type, cs.contains(d.digest) ? "" : "  (not stored)");
}

void print_config(const oci::image_config& c) {
    oci::platform p;
    p.os = c.os;
    p.architecture = c.architecture;
    p.variant = c.variant;
    fmt::print("Platform:   {}\n", oci::format(p));
    if (!c.created.empty()) fmt::print("Created:    {}\n", c.created);
    const auto& cc = c.config;
    auto quoted = [](const std::vector<std::string>& v) {
        std::vector<std::string> q;
        for (const auto& s : v)
            q.push_back(nlohmann::json(s).dump());
        return "[" + join(q, ", ") + "]";
    };
    if (cc.entrypoint) fmt::print("Entrypoint: {}\n", quoted(*cc.entrypoint));
    if (cc.cmd) fmt::print("Cmd:        {}\n", quoted(*cc.cmd));
    if (!cc.working_dir.empty()) fmt::print("WorkingDir: {}\n", cc.working_dir);
    if (!cc.user.empty()) fmt::print("User:       {}\n", cc.user);
    for (const auto& e : cc.env)
        fmt::print("Env:        {}\n", e);
    if (!cc.exposed_ports.empty()) fmt::print("Ports:      {}\n", join(cc.exposed_ports, " "));
}

int run_image_inspect(const image_inspect_options& o) {
    std::optional<oci::platform> want;
    if (!o.platform.empty()) {
        std::error_code ec;
        std::string why;
        want = oci::parse_platform(o.platform, ec, &why);
        if (ec) throw CLI::ValidationError("--platform", why);
    }
    stores s;
    auto entry = s.find(o.ref);
    auto target = entry.target;
    if (want) {
        std::error_code ec;
        std::string why;
        target = s.images().resolve(entry.target, *want, ec, &why);
        if (ec) throw_error(ec, "{}: {}", o.ref, why);
    }
    auto bytes = s.read_document(target);

    nlohmann::json j = {{"name", entry.name},
                        {"digest", target.digest.str()},
                        {"mediaType", target.media_type},
                        {"size", target.size}};
    if (!(target.digest == entry.target.digest)) j["indexDigest"] = entry.target.digest.str();

    if (oci::media_type::is_index(target.media_type)) {
        std::error_code ec;
        std::string why;
        auto ix = oci::parse_index(bytes, ec, &why);
        if (ec) throw_error(ec, "{}: index {}: {}", o.ref, target.digest.str(), why);
        if (o.json) {
            auto platforms = nlohmann::json::array();
            for (const auto& m : ix.manifests)
                if (m.platform) platforms.push_back(oci::format(*m.platform));
            j["platforms"] = std::move(platforms);
            j["index"] = as_json(bytes);
            fmt::print("{}\n", j.dump(2));
            return exit_ok;
        }
        fmt::print("Name:       {}\nDigest:     {}\nMedia type: {}\nManifests:\n",
                   display_name(entry), target.digest.str(), target.media_type);
        for (const auto& m : ix.manifests) {
            fmt::print("  {:<16}", m.platform ? oci::format(*m.platform) : "-");
            print_descriptor_line(m, s.content());
        }
        return exit_ok;
    }

    if (!oci::media_type::is_manifest(target.media_type))
        throw_error(oci::errc::unsupported_media_type,
                    "{}: {} is {}, neither a manifest nor an index", o.ref, target.digest.str(),
                    target.media_type);
    std::error_code ec;
    std::string why;
    auto m = oci::parse_manifest(bytes, ec, &why);
    if (ec) throw_error(ec, "{}: manifest {}: {}", o.ref, target.digest.str(), why);
    std::string config_bytes;
    if (s.content().contains(m.config.digest)) config_bytes = s.read_document(m.config);
    if (o.json) {
        j["manifest"] = as_json(bytes);
        if (!config_bytes.empty()) j["config"] = as_json(config_bytes);
        fmt::print("{}\n", j.dump(2));
        return exit_ok;
    }
    fmt::print("Name:       {}\nDigest:     {}\nMedia type: {}\n", display_name(entry),
               target.digest.str(), target.media_type);
    if (!(target.digest == entry.target.digest))
        fmt::print("Index:      {}\n", entry.target.digest.str());
    if (oci::media_type::is_config(m.config.media_type) && !config_bytes.empty()) {
        auto c = oci::parse_image_config(config_bytes, ec, &why);
        if (ec) throw_error(ec, "{}: config {}: {}", o.ref, m.config.digest.str(), why);
        print_config(c);
    }
    fmt::print("Config:\n");
    print_descriptor_line(m.config, s.content());
    fmt::print("Layers:\n");
    for (const auto& layer : m.layers)
        print_descriptor_line(layer, s.content());
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz image rm, cz image tag

struct image_rm_options {
    std::vector<std::string> refs;
};

int run_image_rm(const image_rm_options& o) {
    stores s;
    // Every REF must name an image before any is removed.
    std::vector<std::string> names;
    for (const auto& ref : o.refs) {
        auto name = s.find(ref).name;
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    for (const auto& name : names) {
        std::error_code ec;
        std::string why;
        s.images().untag(name, ec, &why);
        // Another process may have removed it meanwhile: done either way.
        if (ec && ec != oci::errc::not_found) throw_error(ec, "{}: {}", name, why);
        fmt::print("Untagged: {}\n", name);
    }
    return exit_ok;
}

struct image_tag_options {
    std::string source;
    std::string target;
};

int run_image_tag(const image_tag_options& o) {
    std::error_code ec;
    std::string why;
    auto ref = oci::parse_reference(o.target, ec, &why);
    if (ec) throw_error(ec, "{}: {}", o.target, why);
    if (ref.digest)
        throw_error(oci::errc::invalid_reference, "{}: a tag names no digest (give NAME[:TAG])",
                    o.target);
    stores s;
    auto source = s.find(o.source);
    auto name = ref.str();
    s.images().tag(name, source.target, ec, &why);
    if (ec) throw_error(ec, "{}: {}", name, why);
    fmt::print("Tagged: {} -> {}\n", name, source.target.digest.str());
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz image load

struct image_load_options {
    std::string path;
    std::string name;
};

oci::import_report load_layout(const oci::image_store& images, const std::string& dir) {
    std::error_code ec;
    std::string why;
    auto report = oci::import_layout(images, dir, ec, &why);
    if (ec) throw_error(ec, "{}: {}", dir, why);
    return report;
}

int run_image_load(const image_load_options& o) {
    struct ::stat st;
    if (::stat(o.path.c_str(), &st) != 0) throw_error(last_system_error(), "{}", o.path);
    stores s;
    oci::import_report report;
    std::error_code ec;
    std::string why;
    bool skopeo_dir = S_ISDIR(st.st_mode) &&
                      !std::filesystem::exists(std::filesystem::path(o.path) / "oci-layout", ec) &&
                      std::filesystem::exists(std::filesystem::path(o.path) / "version", ec);
    if (!o.name.empty() && !skopeo_dir)
        throw_error(std::make_error_code(std::errc::invalid_argument),
                    "{}: --name is for skopeo's dir: format, whose images have no name", o.path);
    if (skopeo_dir) {
        // skopeo's dir: format: one image, no name of its own.
        if (o.name.empty())
            throw_error(std::make_error_code(std::errc::invalid_argument),
                        "{}: an image in skopeo's dir: format has no name: give --name NAME",
                        o.path);
        auto ref = oci::parse_reference(o.name, ec, &why);
        if (ec) throw_error(ec, "--name {}: {}", o.name, why);
        report = oci::import_dir(s.images(), o.path, ref.str(), ec, &why);
        if (ec) throw_error(ec, "{}: {}", o.path, why);
    } else if (S_ISDIR(st.st_mode)) {
        report = load_layout(s.images(), o.path);
    } else {
        // An OCI archive or a `docker save` tar (plain, gzip or zstd): told apart by content.
        report = oci::load_archive(s.images(), o.path, ec, &why);
        if (ec) throw_error(ec, "{}: {}", o.path, why);
    }
    for (const auto& e : report.tagged)
        fmt::print("Loaded: {} ({})\n", e.name, e.target.digest.str());
    if (report.untagged != 0)
        fmt::print("Stored {} entr{} without a name (cz store gc removes them)\n", report.untagged,
                   report.untagged == 1 ? "y" : "ies");
    fmt::print("{} blobs, {}\n", report.blobs, human_size(report.bytes));
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz image save

struct image_save_options {
    std::vector<std::string> refs;
    std::string output;
    std::string format = "oci";
    std::string platform;
};

int run_image_save(const image_save_options& o) {
    auto format = o.format == "docker" ? oci::archive_format::docker : oci::archive_format::oci;
    oci::save_options options;
    std::error_code ec;
    std::string why;
    if (!o.platform.empty()) {
        options.docker_platform = oci::parse_platform(o.platform, ec, &why);
        if (ec) throw_error(ec, "--platform {}: {}", o.platform, why);
    }
    stores s;
    // Names as the store has them: `busybox` saves docker.io/library/busybox:latest.
    std::vector<std::string> names;
    for (const auto& ref : o.refs)
        names.push_back(s.find(ref).name);
    oci::save_archive(s.images(), names, o.output, format, options, ec, &why);
    if (ec) throw_error(ec, "{}: {}", o.output, why);
    fmt::print("Saved {} image{} to {} ({} archive)\n", names.size(), names.size() == 1 ? "" : "s",
               o.output, o.format);
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz image import

struct image_import_options {
    std::string rootfs;
    std::string name;
    std::string platform;
    std::vector<std::string> changes;
};

// A command of a --change instruction: a JSON array of strings (exec form), or anything else as
// one shell command (shell form: /bin/sh -c TEXT), as a Dockerfile takes CMD and ENTRYPOINT.
std::vector<std::string> change_command(const std::string& change, std::string_view text) {
    if (text.starts_with("[")) {
        auto j = nlohmann::json::parse(text, nullptr, false);
        std::vector<std::string> argv;
        if (j.is_array()) {
            for (const auto& word : j)
                if (word.is_string()) argv.push_back(word.get<std::string>());
            if (argv.size() == j.size()) return argv;
        }
        throw CLI::ValidationError("--change", "'" + change + "': not a JSON array of strings");
    }
    return {"/bin/sh", "-c", std::string(text)};
}

// Applies one `docker import --change` instruction to an image's config: CMD, ENTRYPOINT, ENV
// NAME=value..., WORKDIR, USER.
void apply_change(const std::string& change, oci::container_config& c) {
    auto space = change.find_first_of(" \t");
    std::string word = change.substr(0, space);
    std::string rest =
        space == std::string::npos ? "" : change.substr(change.find_first_not_of(" \t", space));
    for (auto& ch : word)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    auto bad = [&](const std::string& why) -> CLI::ValidationError {
        return CLI::ValidationError("--change", "'" + change + "': " + why);
    };
    if (rest.empty()) throw bad("no value");
    if (word == "CMD") {
        c.cmd = change_command(change, rest);
    } else if (word == "ENTRYPOINT") {
        c.entrypoint = change_command(change, rest);
    } else if (word == "ENV") {
        // ENV NAME=value [NAME=value...], or ENV NAME value.
        std::vector<std::string> entries;
        if (rest.find('=') == std::string::npos || rest.find('=') > rest.find(' ')) {
            auto sp = rest.find(' ');
            if (sp == std::string::npos) throw bad("ENV NAME=value or ENV NAME value");
            entries.push_back(rest.substr(0, sp) + "=" +
                              rest.substr(rest.find_first_not_of(' ', sp)));
        } else {
            std::istringstream words(rest);
            for (std::string e; words >> e;) {
                if (e.find('=') == std::string::npos || e.front() == '=')
                    throw bad("'" + e + "' is not NAME=value");
                entries.push_back(e);
            }
        }
        for (auto& e : entries) {
            auto name = e.substr(0, e.find('=') + 1);
            std::erase_if(c.env, [&](const std::string& old) { return old.starts_with(name); });
            c.env.push_back(e);
        }
    } else if (word == "WORKDIR") {
        if (rest.front() != '/') throw bad("WORKDIR needs an absolute path");
        c.working_dir = rest;
    } else if (word == "USER") {
        c.user = rest;
    } else {
        throw bad("only CMD, ENTRYPOINT, ENV, WORKDIR and USER are supported");
    }
}

int run_image_import(const image_import_options& o) {
    std::error_code ec;
    std::string why;
    auto ref = oci::parse_reference(o.name, ec, &why);
    if (ec) throw_error(ec, "{}: {}", o.name, why);
    oci::rootfs_options options;
    if (!o.platform.empty()) {
        options.image_platform = oci::parse_platform(o.platform, ec, &why);
        if (ec) throw_error(ec, "--platform {}: {}", o.platform, why);
    }
    for (const auto& change : o.changes)
        apply_change(change, options.config);
    stores s;
    auto d = oci::import_rootfs(s.images(), o.rootfs, ref.str(), options, ec, &why);
    if (ec) throw_error(ec, "{}: {}", o.rootfs, why);
    fmt::print("Imported: {} ({})\n", ref.str(), d.digest.str());
    return exit_ok;
}

// ---------------------------------------------------------------------------------------------
// cz store verify, cz store gc

struct store_verify_options {};

int run_store_verify(const store_verify_options&) {
    stores s;
    std::error_code ec;
    auto report = s.images().verify(ec);
    if (ec) throw_error(ec, "store {}", s.root().string());
    for (const auto& p : report.problems)
        fmt::print("{}\n", p);
    fmt::print("{} blobs, {} re-hashed; {} problem{}\n", report.blobs, human_size(report.bytes),
               report.problems.size(), report.problems.size() == 1 ? "" : "s");
    if (report.partial_blobs != 0)
        fmt::print("{} partial blob{} in {} ({}): the next pull of each resumes it; 'cz store gc' "
                   "removes those untouched for a day\n",
                   report.partial_blobs, report.partial_blobs == 1 ? "" : "s",
                   s.content().ingest_dir().string(), human_size(report.partial_bytes));
    if (report.ok()) return exit_ok;
    std::fflush(stdout);
    fmt::print(stderr, "cz: store {}: {} problem{} (listed above)\n", s.root().string(),
               report.problems.size(), report.problems.size() == 1 ? "" : "s");
    return exit_error;
}

struct store_gc_options {
    std::string grace = "10m";
    bool dry_run = false;
};

// 0, 90s, 10m, 2h, 1d: a whole number of seconds, minutes, hours or days (no unit: seconds).
std::chrono::seconds parse_duration_option(const char* option, const std::string& text) {
    auto bad = [&] {
        return CLI::ValidationError(option, "'" + text +
                                                "' is not a duration (e.g. 0, 90s, 10m, "
                                                "2h, 1d)");
    };
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 9 || text.size() - digits > 1) throw bad();
    std::int64_t n = std::stoll(text.substr(0, digits));
    std::int64_t unit = 1;
    if (digits < text.size()) {
        switch (text[digits]) {
        case 's':
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            throw bad();
        }
    }
    return std::chrono::seconds(n * unit);
}

int run_store_gc(const store_gc_options& o) {
    oci::gc_options options;
    options.grace = parse_duration_option("--grace", o.grace);
    options.dry_run = o.dry_run;
    stores s;
    std::error_code ec;
    std::string why;
    auto report = s.images().gc(options, ec, &why);
    if (ec) throw_error(ec, "store {}: {}", s.root().string(), why);
    fmt::print("{} {} blob{}, {}", o.dry_run ? "Would remove" : "Removed", report.removed,
               report.removed == 1 ? "" : "s", human_size(report.bytes));
    if (report.kept != 0)
        fmt::print("; kept {} unreachable blob{} younger than {}", report.kept,
                   report.kept == 1 ? "" : "s", o.grace);
    if (report.ingests_removed != 0)
        fmt::print("; {} {} abandoned partial blob{}, {}", o.dry_run ? "would remove" : "removed",
                   report.ingests_removed, report.ingests_removed == 1 ? "" : "s",
                   human_size(report.ingest_bytes));
    fmt::print("\n");
    return exit_ok;
}

} // namespace

// The footer of the commands that take a REF.
constexpr const char* ref_help = "REF is a reference as stored (skopeo's oci: names) or in any "
                                 "form that normalises to it: busybox = "
                                 "docker.io/library/busybox:latest.";

void register_image_commands(context ctx) {
    auto* image_cmd = ctx.app.add_subcommand(
        "image", "Images in the store under the state root: <root>/content, an OCI image layout");
    image_cmd->require_subcommand(1);
    // `cz image ls --root DIR` as well as `cz --root DIR image ls`: options the command does not
    // know go up to cz's own. Inherited by the commands added below.
    image_cmd->fallthrough();

    add_command<image_ls_options>(
        ctx, *image_cmd, "ls",
        "List the references: digest, size stored (every blob reached, once) and platforms",
        [](CLI::App& cmd, image_ls_options& o) {
            cmd.add_flag("--json", o.json,
                         "A JSON array: name, digest, mediaType, size, platforms, created "
                         "(manifests), problem (a blob missing or unreadable)");
        },
        run_image_ls);

    add_command<image_inspect_options>(
        ctx, *image_cmd, "inspect",
        "Show an image: its manifest, config and layers, or an index's manifests",
        [](CLI::App& cmd, image_inspect_options& o) {
            cmd.footer(ref_help);
            cmd.add_option("REF", o.ref, "Image reference")->required();
            cmd.add_option("--platform", o.platform,
                           "Follow an index to this platform's manifest (os/arch[/variant])");
            cmd.add_flag("--json", o.json,
                         "JSON: name, digest, mediaType, size, and the manifest and config (or "
                         "the index and its platforms) as stored");
        },
        run_image_inspect);

    add_command<image_rm_options>(
        ctx, *image_cmd, "rm",
        "Remove references; their blobs stay until 'cz store gc' finds nothing reaches them",
        [](CLI::App& cmd, image_rm_options& o) {
            cmd.footer(ref_help);
            cmd.add_option("REF", o.refs, "Image references (all must exist)")->required();
        },
        run_image_rm);

    add_command<image_tag_options>(
        ctx, *image_cmd, "tag", "Give the image SRC names another reference DST",
        [](CLI::App& cmd, image_tag_options& o) {
            cmd.footer(ref_help);
            cmd.add_option("SRC", o.source, "Image reference")->required();
            cmd.add_option("DST", o.target,
                           "New reference, normalised (app:1 = docker.io/library/app:1)")
                ->required();
        },
        run_image_tag);

    add_command<image_load_options>(
        ctx, *image_cmd, "load",
        "Import images from an OCI image layout directory (as 'skopeo copy ... oci:DIR:NAME' "
        "writes it), skopeo's dir: format (with --name), an OCI archive, or a 'docker save' tar "
        "(plain, gzip or zstd); entries with a name are tagged so",
        [](CLI::App& cmd, image_load_options& o) {
            cmd.add_option("PATH", o.path, "Directory (OCI layout or dir:), or archive file")
                ->required();
            cmd.add_option("--name", o.name,
                           "The reference for an image in skopeo's dir: format (normalised)");
        },
        run_image_load);

    add_command<image_save_options>(
        ctx, *image_cmd, "save",
        "Write images to an archive: an OCI archive (indexes kept whole), or a 'docker save' tar "
        "that docker load and skopeo's docker-archive: read",
        [](CLI::App& cmd, image_save_options& o) {
            cmd.footer(ref_help);
            cmd.add_option("REF", o.refs, "Image references")->required();
            cmd.add_option("--output,-o", o.output, "The archive to write")->required();
            cmd.add_option("--format", o.format, "oci or docker (default: oci)")
                ->check(CLI::IsMember({"oci", "docker"}));
            cmd.add_option("--platform", o.platform,
                           "docker format: the platform an index is resolved to (default: this "
                           "machine's)");
        },
        run_image_save);

    add_command<image_import_options>(
        ctx, *image_cmd, "import",
        "Make a one-layer image from a root filesystem tar (plain, gzip or zstd), like 'docker "
        "import': how a machine without a registry gets its first image",
        [](CLI::App& cmd, image_import_options& o) {
            cmd.add_option("ROOTFS", o.rootfs, "Root filesystem tar")->required();
            cmd.add_option("NAME", o.name,
                           "Reference to tag it as (normalised: app:1 = "
                           "docker.io/library/app:1)")
                ->required();
            cmd.add_option("--platform", o.platform,
                           "The platform the image says it is for (default: this machine's)");
            cmd.add_option("-c,--change", o.changes,
                           "Set how containers run, as a Dockerfile line: CMD, ENTRYPOINT (JSON "
                           "array or shell command), ENV NAME=value, WORKDIR, USER")
                ->type_name("INSTRUCTION")
                ->allow_extra_args(false);
        },
        run_image_import);

    register_image_pull_command(ctx, *image_cmd);
}

void register_store_commands(context ctx) {
    auto* store_cmd =
        ctx.app.add_subcommand("store", "The content store under the state root: check, clean");
    store_cmd->require_subcommand(1);
    store_cmd->fallthrough(); // `cz store gc --root DIR`, as for `cz image`

    add_command<store_verify_options>(
        ctx, *store_cmd, "verify",
        "Re-hash every blob and check that everything a reference reaches is stored; list "
        "each problem and exit 1 when there is one",
        [](CLI::App&, store_verify_options&) {}, run_store_verify);

    add_command<store_gc_options>(
        ctx, *store_cmd, "gc", "Remove the blobs that no reference reaches",
        [](CLI::App& cmd, store_gc_options& o) {
            cmd.add_option("--grace", o.grace,
                           "Keep unreachable blobs younger than this (0, 90s, 10m, 2h, 1d): a "
                           "load in progress stores blobs before it tags them")
                ->capture_default_str();
            cmd.add_flag("--dry-run", o.dry_run, "Report what would be removed; remove nothing");
        },
        run_store_gc);
}

} // namespace cz::cli
