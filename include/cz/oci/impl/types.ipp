// Out-of-line definitions for cz/oci/types.hpp: digests, JSON reading and writing of OCI
// documents.
#pragma once

#include <cz/oci/detail/json_depth.hpp>
#include <cz/oci/detail/report.hpp>
#include <cz/oci/types.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <limits>
#include <string>

namespace cz::oci {
namespace detail {

// Parses a whole document that must be a JSON object of at most max_document_size bytes. The
// caller names the document; *detail says what is wrong inside it.
inline bool parse_document(std::string_view bytes, nlohmann::json& out, std::error_code& ec,
                           std::string* detail) {
    if (bytes.size() > max_document_size)
        return set_error(
            ec, detail, errc::document_too_large,
            fmt::format("{} bytes, more than the {} allowed", bytes.size(), max_document_size));
    if (!depth_within(bytes, max_json_depth))
        return set_error(
            ec, detail, errc::invalid_json,
            fmt::format("arrays and objects nested more than {} deep", max_json_depth));
    try {
        out = nlohmann::json::parse(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::parse_error& e) {
        // e.byte: 1-based position of the character the parser stopped at.
        return set_error(ec, detail, errc::invalid_json,
                         fmt::format("JSON syntax error at byte {}", e.byte));
    } catch (const nlohmann::json::exception& e) {
        // out_of_range: a number too large for a double (1E400), found by fuzzing.
        return set_error(ec, detail, errc::invalid_json, fmt::format("invalid JSON: {}", e.what()));
    }
    if (!out.is_object())
        return set_error(ec, detail, errc::invalid_json,
                         fmt::format("expected a JSON object, found {}", out.type_name()));
    return true;
}

// Reads typed fields out of JSON objects, naming each field by its path on failure. Every
// getter returns false once an error has been recorded, so a parser reads top to bottom and
// stops at the first bad field.
class fields {
public:
    fields(std::error_code& ec, std::string* detail) : ec_(ec), detail_(detail) {}

    bool fail(const std::string& path, std::string_view why, errc e = errc::invalid_field) {
        return set_error(ec_, detail_, e, fmt::format("{}: {}", path, why));
    }

    static std::string join(std::string_view path, std::string_view key) {
        return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
    }
    static std::string at(std::string_view path, std::size_t i) {
        return fmt::format("{}[{}]", path, i);
    }

    // A member that may be absent (then nullptr); null counts as absent, as Go's decoder does.
    static const nlohmann::json* find(const nlohmann::json& obj, std::string_view key) {
        auto it = obj.find(key);
        if (it == obj.end() || it->is_null()) return nullptr;
        return &*it;
    }

    bool string(const nlohmann::json& obj, std::string_view path, std::string_view key,
                std::string& out, bool required = false) {
        const auto* v = find(obj, key);
        if (!v) return required ? fail(join(path, key), "missing") : true;
        if (!v->is_string()) return fail(join(path, key), "must be a string");
        out = v->get<std::string>();
        return true;
    }

    bool strings(const nlohmann::json& obj, std::string_view path, std::string_view key,
                 std::vector<std::string>& out) {
        const auto* v = find(obj, key);
        if (!v) return true;
        return string_array(*v, join(path, key), out);
    }

    bool string_array(const nlohmann::json& v, const std::string& path,
                      std::vector<std::string>& out) {
        if (!v.is_array()) return fail(path, "must be an array of strings");
        out.clear();
        for (std::size_t i = 0; i < v.size(); ++i) {
            if (!v[i].is_string()) return fail(at(path, i), "must be a string");
            out.push_back(v[i].get<std::string>());
        }
        return true;
    }

    bool string_map(const nlohmann::json& obj, std::string_view path, std::string_view key,
                    std::map<std::string, std::string>& out) {
        const auto* v = find(obj, key);
        if (!v) return true;
        auto p = join(path, key);
        if (!v->is_object()) return fail(p, "must be an object of strings");
        for (const auto& [k, value] : v->items()) {
            if (!value.is_string())
                return fail(fmt::format("{}[{}]", p, quote_input(k)), "must be a string");
            out[k] = value.get<std::string>();
        }
        return true;
    }

    // The keys of an object whose values are all objects (ExposedPorts, Volumes: Go's
    // map[string]struct{}), sorted.
    bool key_set(const nlohmann::json& obj, std::string_view path, std::string_view key,
                 std::vector<std::string>& out) {
        const auto* v = find(obj, key);
        if (!v) return true;
        auto p = join(path, key);
        if (!v->is_object()) return fail(p, "must be an object");
        for (const auto& [k, value] : v->items()) {
            if (!value.is_object() && !value.is_null())
                return fail(fmt::format("{}[{}]", p, quote_input(k)), "must be an object");
            out.push_back(k);
        }
        std::sort(out.begin(), out.end());
        return true;
    }

    bool integer(const nlohmann::json& obj, std::string_view path, std::string_view key,
                 std::int64_t& out, bool required) {
        const auto* v = find(obj, key);
        if (!v) return required ? fail(join(path, key), "missing") : true;
        if (v->is_number_unsigned()) {
            auto u = v->get<std::uint64_t>();
            if (u > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
                return fail(join(path, key), "too large");
            out = std::int64_t(u);
            return true;
        }
        if (v->is_number_integer()) {
            out = v->get<std::int64_t>();
            return true;
        }
        return fail(join(path, key), "must be an integer");
    }

    bool boolean(const nlohmann::json& obj, std::string_view path, std::string_view key,
                 bool& out) {
        const auto* v = find(obj, key);
        if (!v) return true;
        if (!v->is_boolean()) return fail(join(path, key), "must be true or false");
        out = v->get<bool>();
        return true;
    }

    bool digest_value(const nlohmann::json& v, const std::string& path, cz::digest& out) {
        if (!v.is_string()) return fail(path, "must be a string");
        std::string why;
        out = parse_digest(v.get_ref<const std::string&>(), ec_, &why);
        if (ec_) {
            if (detail_) *detail_ = fmt::format("{}: {}", path, why);
            return false;
        }
        return true;
    }

    bool media_type(const nlohmann::json& obj, std::string_view path, std::string& out,
                    bool required) {
        if (!string(obj, path, "mediaType", out, required)) return false;
        if (out.empty() && !required) return true;
        if (!valid_media_type(out))
            return fail(join(path, "mediaType"),
                        fmt::format("{} is not a media type (type/subtype)", quote_input(out)));
        return true;
    }

    // RFC 6838 §4.2: type "/" subtype, each 1-127 restricted-name characters; the OCI types add
    // "+suffix" and ".v1" which are such characters too.
    static bool valid_media_type(std::string_view t) {
        auto slash = t.find('/');
        if (slash == std::string_view::npos) return false;
        auto valid_part = [](std::string_view s) {
            if (s.empty() || s.size() > 127 || !std::isalnum(static_cast<unsigned char>(s[0])))
                return false;
            return std::all_of(s.begin(), s.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) ||
                       std::string_view("!#$&-^_.+").find(c) != std::string_view::npos;
            });
        };
        return valid_part(t.substr(0, slash)) && valid_part(t.substr(slash + 1));
    }

private:
    std::error_code& ec_;
    std::string* detail_;
};

inline bool read_platform(fields& f, const nlohmann::json& v, const std::string& path,
                          platform& out) {
    if (!v.is_object()) return f.fail(path, "must be an object");
    return f.string(v, path, "os", out.os, true) &&
           f.string(v, path, "architecture", out.architecture, true) &&
           f.string(v, path, "variant", out.variant) &&
           f.string(v, path, "os.version", out.os_version) &&
           f.strings(v, path, "os.features", out.os_features);
}

inline bool read_descriptor(fields& f, const nlohmann::json& v, const std::string& path,
                            descriptor& out) {
    if (!v.is_object()) return f.fail(path, "must be an object");
    if (!f.media_type(v, path, out.media_type, true)) return false;
    const auto* d = fields::find(v, "digest");
    if (!d) return f.fail(fields::join(path, "digest"), "missing");
    if (!f.digest_value(*d, fields::join(path, "digest"), out.digest)) return false;
    if (!f.integer(v, path, "size", out.size, true)) return false;
    if (out.size < 0) return f.fail(fields::join(path, "size"), "must not be negative");
    if (!f.strings(v, path, "urls", out.urls) ||
        !f.string_map(v, path, "annotations", out.annotations) ||
        !f.string(v, path, "artifactType", out.artifact_type))
        return false;
    if (const auto* p = fields::find(v, "platform")) {
        out.platform.emplace();
        if (!read_platform(f, *p, fields::join(path, "platform"), *out.platform)) return false;
    }
    return true;
}

inline bool read_descriptors(fields& f, const nlohmann::json& obj, std::string_view key,
                             bool required, std::vector<descriptor>& out) {
    const auto* v = fields::find(obj, key);
    if (!v) return required ? f.fail(std::string(key), "missing") : true;
    if (!v->is_array()) return f.fail(std::string(key), "must be an array of descriptors");
    out.resize(v->size());
    for (std::size_t i = 0; i < v->size(); ++i)
        if (!read_descriptor(f, (*v)[i], fields::at(key, i), out[i])) return false;
    return true;
}

inline bool read_schema_version(fields& f, const nlohmann::json& obj, int& out) {
    std::int64_t v = 0;
    if (!f.integer(obj, "", "schemaVersion", v, true)) return false;
    if (v != 2)
        return f.fail("schemaVersion", fmt::format("is {}, only 2 is supported", v),
                      errc::unsupported_schema_version);
    out = 2;
    return true;
}

inline void put_if(nlohmann::json& j, const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
}

inline std::string dump(const nlohmann::json& j) {
    // error_handler_t::strict is the default; every string cz stores came from parsed JSON or
    // from code, so it is valid UTF-8 unless a caller put raw bytes in: replace those.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace detail

CZ_DECL digest parse_digest(std::string_view text, std::error_code& ec, std::string* detail) {
    using detail::quote_input;
    ec.clear();
    auto colon = text.find(':');
    auto bad = [&](std::string why) {
        detail::set_error(ec, detail, errc::invalid_digest,
                          fmt::format("{}: {}", quote_input(text), why));
        return digest{};
    };
    if (colon == std::string_view::npos) return bad("not <algorithm>:<hex>");
    auto alg = text.substr(0, colon);
    auto encoded = text.substr(colon + 1);
    // OCI descriptor.md: algorithm ::= component ([+._-] component)*, component ::= [a-z0-9]+;
    // encoded ::= [a-zA-Z0-9=_-]+.
    bool alg_ok = !alg.empty();
    char prev = '+';
    for (char c : alg) {
        bool sep = c == '+' || c == '.' || c == '_' || c == '-';
        bool comp = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!sep && !comp) alg_ok = false;
        if (sep && (prev == '+' || prev == '.' || prev == '_' || prev == '-')) alg_ok = false;
        prev = c;
    }
    if (prev == '+' || prev == '.' || prev == '_' || prev == '-') alg_ok = false;
    if (!alg_ok) return bad("the algorithm is not lowercase letters and digits");
    bool enc_ok = !encoded.empty() && std::all_of(encoded.begin(), encoded.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '=' || c == '_' || c == '-';
    });
    if (!enc_ok) return bad("the encoded part is empty or has characters outside [a-zA-Z0-9=_-]");
    if (alg != "sha256") {
        detail::set_error(ec, detail, errc::unsupported_digest_algorithm,
                          fmt::format("{}: algorithm {} is not supported (only sha256)",
                                      quote_input(text), quote_input(alg)));
        return digest{};
    }
    if (encoded.size() != 64)
        return bad(fmt::format("sha256 needs 64 hex digits, not {}", encoded.size()));
    if (!std::all_of(encoded.begin(), encoded.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }))
        return bad("sha256 hex must be lowercase 0-9a-f");
    std::error_code core_ec;
    auto d = digest::parse(text, core_ec);
    if (core_ec) return bad(core_ec.message());
    return d;
}

CZ_DECL digest parse_digest(std::string_view text) {
    std::error_code ec;
    std::string detail;
    auto d = parse_digest(text, ec, &detail);
    if (ec) throw cz::system_error(ec, "digest " + detail);
    return d;
}

CZ_DECL std::string_view detect_media_type(std::string_view bytes) {
    nlohmann::json j;
    std::error_code ec;
    if (!detail::parse_document(bytes, j, ec, nullptr)) return {};
    if (auto it = j.find("mediaType"); it != j.end() && it->is_string()) {
        const auto& t = it->get_ref<const std::string&>();
        for (auto known : {media_type::oci_index, media_type::docker_manifest_list,
                           media_type::oci_manifest, media_type::docker_manifest,
                           media_type::docker_schema1, media_type::docker_schema1_signed})
            if (t == known) return known;
    }
    if (j.contains("manifests")) return media_type::oci_index;
    if (j.contains("config") || j.contains("layers")) return media_type::oci_manifest;
    return {};
}

CZ_DECL descriptor parse_descriptor(const nlohmann::json& j, std::string_view path,
                                    std::error_code& ec, std::string* detail) {
    ec.clear();
    detail::fields f(ec, detail);
    descriptor d;
    detail::read_descriptor(f, j, std::string(path), d);
    return d;
}

CZ_DECL manifest parse_manifest(std::string bytes, std::error_code& ec, std::string* detail) {
    ec.clear();
    nlohmann::json j;
    manifest m;
    if (!detail::parse_document(bytes, j, ec, detail)) return m;
    detail::fields f(ec, detail);
    if (!f.media_type(j, "", m.media_type, false)) return m;
    if (!m.media_type.empty() && !media_type::is_manifest(m.media_type)) {
        auto why = media_type::is_index(m.media_type) ? "is an index, not an image manifest"
                   : (m.media_type == media_type::docker_schema1 ||
                      m.media_type == media_type::docker_schema1_signed)
                       ? "is Docker schema1, which cz does not read (deprecated since 2019)"
                       : "is not an image manifest type";
        f.fail("mediaType", fmt::format("{} {}", detail::quote_input(m.media_type), why),
               errc::unsupported_media_type);
        return m;
    }
    if (m.media_type.empty() && j.contains("manifests") && !j.contains("config")) {
        f.fail("manifests", "present: this is an index, not an image manifest",
               errc::unsupported_media_type);
        return m;
    }
    if (!detail::read_schema_version(f, j, m.schema_version)) return m;
    const auto* config = detail::fields::find(j, "config");
    if (!config) {
        f.fail("config", "missing");
        return m;
    }
    if (!detail::read_descriptor(f, *config, "config", m.config) ||
        !detail::read_descriptors(f, j, "layers", true, m.layers) ||
        !f.string(j, "", "artifactType", m.artifact_type) ||
        !f.string_map(j, "", "annotations", m.annotations))
        return m;
    if (const auto* s = detail::fields::find(j, "subject")) {
        m.subject.emplace();
        if (!detail::read_descriptor(f, *s, "subject", *m.subject)) return m;
    }
    m.bytes = std::move(bytes);
    return m;
}

CZ_DECL manifest parse_manifest(std::string bytes) {
    std::error_code ec;
    std::string detail;
    auto m = parse_manifest(std::move(bytes), ec, &detail);
    if (ec) throw cz::system_error(ec, "manifest: " + detail);
    return m;
}

CZ_DECL image_index parse_index(std::string bytes, std::error_code& ec, std::string* detail) {
    ec.clear();
    nlohmann::json j;
    image_index ix;
    if (!detail::parse_document(bytes, j, ec, detail)) return ix;
    detail::fields f(ec, detail);
    if (!f.media_type(j, "", ix.media_type, false)) return ix;
    if (!ix.media_type.empty() && !media_type::is_index(ix.media_type)) {
        f.fail("mediaType",
               fmt::format("{} is not an index type", detail::quote_input(ix.media_type)),
               errc::unsupported_media_type);
        return ix;
    }
    if (!detail::read_schema_version(f, j, ix.schema_version) ||
        !detail::read_descriptors(f, j, "manifests", true, ix.manifests) ||
        !f.string(j, "", "artifactType", ix.artifact_type) ||
        !f.string_map(j, "", "annotations", ix.annotations))
        return ix;
    if (const auto* s = detail::fields::find(j, "subject")) {
        ix.subject.emplace();
        if (!detail::read_descriptor(f, *s, "subject", *ix.subject)) return ix;
    }
    ix.bytes = std::move(bytes);
    return ix;
}

CZ_DECL image_index parse_index(std::string bytes) {
    std::error_code ec;
    std::string detail;
    auto ix = parse_index(std::move(bytes), ec, &detail);
    if (ec) throw cz::system_error(ec, "index: " + detail);
    return ix;
}

CZ_DECL image_config parse_image_config(std::string bytes, std::error_code& ec,
                                        std::string* detail) {
    ec.clear();
    nlohmann::json j;
    image_config c;
    if (!detail::parse_document(bytes, j, ec, detail)) return c;
    detail::fields f(ec, detail);
    if (!f.string(j, "", "created", c.created) || !f.string(j, "", "author", c.author) ||
        !f.string(j, "", "architecture", c.architecture, true) ||
        !f.string(j, "", "os", c.os, true) || !f.string(j, "", "variant", c.variant) ||
        !f.string(j, "", "os.version", c.os_version))
        return c;
    if (const auto* cc = detail::fields::find(j, "config")) {
        if (!cc->is_object()) {
            f.fail("config", "must be an object");
            return c;
        }
        auto& out = c.config;
        auto optional_list = [&](const char* key, std::optional<std::vector<std::string>>& v) {
            const auto* p = detail::fields::find(*cc, key);
            if (!p) return true;
            v.emplace();
            return f.string_array(*p, detail::fields::join("config", key), *v);
        };
        if (!f.string(*cc, "config", "User", out.user) ||
            !f.key_set(*cc, "config", "ExposedPorts", out.exposed_ports) ||
            !f.strings(*cc, "config", "Env", out.env) ||
            !optional_list("Entrypoint", out.entrypoint) || !optional_list("Cmd", out.cmd) ||
            !f.key_set(*cc, "config", "Volumes", out.volumes) ||
            !f.string(*cc, "config", "WorkingDir", out.working_dir) ||
            !f.string_map(*cc, "config", "Labels", out.labels) ||
            !f.string(*cc, "config", "StopSignal", out.stop_signal))
            return c;
    }
    const auto* rootfs = detail::fields::find(j, "rootfs");
    if (!rootfs) {
        f.fail("rootfs", "missing");
        return c;
    }
    if (!rootfs->is_object()) {
        f.fail("rootfs", "must be an object");
        return c;
    }
    if (!f.string(*rootfs, "rootfs", "type", c.rootfs_type, true)) return c;
    if (c.rootfs_type != "layers") {
        f.fail("rootfs.type",
               fmt::format("is {}, must be \"layers\"", detail::quote_input(c.rootfs_type)));
        return c;
    }
    const auto* ids = detail::fields::find(*rootfs, "diff_ids");
    if (!ids) {
        f.fail("rootfs.diff_ids", "missing");
        return c;
    }
    if (!ids->is_array()) {
        f.fail("rootfs.diff_ids", "must be an array of digests");
        return c;
    }
    c.diff_ids.resize(ids->size());
    for (std::size_t i = 0; i < ids->size(); ++i)
        if (!f.digest_value((*ids)[i], detail::fields::at("rootfs.diff_ids", i), c.diff_ids[i]))
            return c;
    if (const auto* h = detail::fields::find(j, "history")) {
        if (!h->is_array()) {
            f.fail("history", "must be an array");
            return c;
        }
        c.history.resize(h->size());
        for (std::size_t i = 0; i < h->size(); ++i) {
            auto path = detail::fields::at("history", i);
            const auto& e = (*h)[i];
            auto& out = c.history[i];
            if (!e.is_object()) {
                f.fail(path, "must be an object");
                return c;
            }
            if (!f.string(e, path, "created", out.created) ||
                !f.string(e, path, "created_by", out.created_by) ||
                !f.string(e, path, "author", out.author) ||
                !f.string(e, path, "comment", out.comment) ||
                !f.boolean(e, path, "empty_layer", out.empty_layer))
                return c;
        }
    }
    c.bytes = std::move(bytes);
    return c;
}

CZ_DECL image_config parse_image_config(std::string bytes) {
    std::error_code ec;
    std::string detail;
    auto c = parse_image_config(std::move(bytes), ec, &detail);
    if (ec) throw cz::system_error(ec, "image config: " + detail);
    return c;
}

CZ_DECL nlohmann::json to_json(const platform& p) {
    nlohmann::json j = {{"architecture", p.architecture}, {"os", p.os}};
    detail::put_if(j, "os.version", p.os_version);
    if (!p.os_features.empty()) j["os.features"] = p.os_features;
    detail::put_if(j, "variant", p.variant);
    return j;
}

CZ_DECL nlohmann::json to_json(const descriptor& d) {
    nlohmann::json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
    if (!d.urls.empty()) j["urls"] = d.urls;
    if (!d.annotations.empty()) j["annotations"] = d.annotations;
    if (d.platform) j["platform"] = to_json(*d.platform);
    detail::put_if(j, "artifactType", d.artifact_type);
    return j;
}

CZ_DECL nlohmann::json to_json(const manifest& m) {
    nlohmann::json j = {{"schemaVersion", m.schema_version}};
    detail::put_if(j, "mediaType", m.media_type);
    detail::put_if(j, "artifactType", m.artifact_type);
    j["config"] = to_json(m.config);
    j["layers"] = nlohmann::json::array();
    for (const auto& l : m.layers)
        j["layers"].push_back(to_json(l));
    if (m.subject) j["subject"] = to_json(*m.subject);
    if (!m.annotations.empty()) j["annotations"] = m.annotations;
    return j;
}

CZ_DECL nlohmann::json to_json(const image_index& ix) {
    nlohmann::json j = {{"schemaVersion", ix.schema_version}};
    detail::put_if(j, "mediaType", ix.media_type);
    detail::put_if(j, "artifactType", ix.artifact_type);
    j["manifests"] = nlohmann::json::array();
    for (const auto& m : ix.manifests)
        j["manifests"].push_back(to_json(m));
    if (ix.subject) j["subject"] = to_json(*ix.subject);
    if (!ix.annotations.empty()) j["annotations"] = ix.annotations;
    return j;
}

CZ_DECL nlohmann::json to_json(const image_config& c) {
    nlohmann::json j = {{"architecture", c.architecture}, {"os", c.os}};
    detail::put_if(j, "created", c.created);
    detail::put_if(j, "author", c.author);
    detail::put_if(j, "variant", c.variant);
    detail::put_if(j, "os.version", c.os_version);
    nlohmann::json cc = nlohmann::json::object();
    const auto& in = c.config;
    detail::put_if(cc, "User", in.user);
    if (!in.exposed_ports.empty()) {
        cc["ExposedPorts"] = nlohmann::json::object();
        for (const auto& p : in.exposed_ports)
            cc["ExposedPorts"][p] = nlohmann::json::object();
    }
    if (!in.env.empty()) cc["Env"] = in.env;
    if (in.entrypoint) cc["Entrypoint"] = *in.entrypoint;
    if (in.cmd) cc["Cmd"] = *in.cmd;
    if (!in.volumes.empty()) {
        cc["Volumes"] = nlohmann::json::object();
        for (const auto& v : in.volumes)
            cc["Volumes"][v] = nlohmann::json::object();
    }
    detail::put_if(cc, "WorkingDir", in.working_dir);
    if (!in.labels.empty()) cc["Labels"] = in.labels;
    detail::put_if(cc, "StopSignal", in.stop_signal);
    j["config"] = cc;
    nlohmann::json ids = nlohmann::json::array();
    for (const auto& d : c.diff_ids)
        ids.push_back(d.str());
    j["rootfs"] = {{"type", c.rootfs_type.empty() ? std::string("layers") : c.rootfs_type},
                   {"diff_ids", ids}};
    if (!c.history.empty()) {
        auto& h = j["history"] = nlohmann::json::array();
        for (const auto& e : c.history) {
            nlohmann::json x = nlohmann::json::object();
            detail::put_if(x, "created", e.created);
            detail::put_if(x, "created_by", e.created_by);
            detail::put_if(x, "author", e.author);
            detail::put_if(x, "comment", e.comment);
            if (e.empty_layer) x["empty_layer"] = true;
            h.push_back(x);
        }
    }
    return j;
}

CZ_DECL const std::string& serialize(manifest& m) {
    m.bytes = detail::dump(to_json(m));
    return m.bytes;
}

CZ_DECL const std::string& serialize(image_index& ix) {
    ix.bytes = detail::dump(to_json(ix));
    return ix.bytes;
}

CZ_DECL const std::string& serialize(image_config& c) {
    c.bytes = detail::dump(to_json(c));
    return c.bytes;
}

CZ_DECL descriptor describe(std::string_view media_type, std::string_view bytes) {
    descriptor d;
    d.media_type = std::string(media_type);
    d.digest = cz::sha256(cz::as_bytes(bytes));
    d.size = std::int64_t(bytes.size());
    return d;
}

} // namespace cz::oci
