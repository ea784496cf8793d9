// cz/oci/platform.hpp: parsing, normalising, and choosing from an index in containerd's order.
#include <cz/oci/platform.hpp>

#include "support/support.hpp"

using namespace cz::oci;

namespace {

descriptor entry(std::string platform_text, char hex = 'a') {
    descriptor d;
    d.media_type = std::string(media_type::oci_manifest);
    d.digest = parse_digest("sha256:" + std::string(64, hex));
    d.size = 1;
    if (!platform_text.empty()) {
        // Keep the index's own spelling (not normalised), as registries write it.
        platform p;
        auto first = platform_text.find('/');
        auto second = platform_text.find('/', first + 1);
        p.os = platform_text.substr(0, first);
        p.architecture = platform_text.substr(first + 1, second - first - 1);
        if (second != std::string::npos) p.variant = platform_text.substr(second + 1);
        d.platform = p;
    }
    return d;
}

std::string chosen(const image_index& ix, std::string_view want) {
    std::error_code ec;
    std::string detail;
    const auto* d = select_platform(ix, parse_platform(want), ec, &detail);
    if (ec) return "error: " + detail;
    return d->platform ? format(*d->platform) : "(no platform)";
}

} // namespace

TEST_SUITE("oci") {

    TEST_CASE("platforms: parse and normalise") {
        const std::pair<std::string, std::string> cases[] = {
            {"linux/amd64", "linux/amd64"},
            {"linux/x86_64", "linux/amd64"},
            {"Linux/X86-64", "linux/amd64"},
            {"linux/amd64/v1", "linux/amd64"},
            {"linux/amd64/v3", "linux/amd64/v3"},
            {"linux/aarch64", "linux/arm64/v8"},
            {"linux/arm64", "linux/arm64/v8"},
            {"linux/arm64/8", "linux/arm64/v8"},
            {"linux/arm64/v9.0", "linux/arm64/v9"},
            {"linux/armhf", "linux/arm/v7"},
            {"linux/armel", "linux/arm/v6"},
            {"linux/arm", "linux/arm/v7"},
            {"linux/arm/6", "linux/arm/v6"},
            {"linux/i386", "linux/386"},
            {"linux/ppc64le", "linux/ppc64le"},
            {"linux/riscv64", "linux/riscv64"},
            {"macos/arm64", "darwin/arm64/v8"},
            {"windows/amd64", "windows/amd64"},
            {"arm64", "linux/arm64/v8"},
            {"s390x", "linux/s390x"},
        };
        for (const auto& c : cases) {
            CAPTURE(c.first);
            CHECK(format(parse_platform(c.first)) == c.second);
        }
        CHECK(parse_platform("linux").architecture == host_platform().architecture);
        CHECK(parse_platform("windows").os == "windows");

        const std::pair<std::string, std::string> bad[] = {
            {"", "empty OS"},
            {"linux/", "empty architecture"},
            {"/amd64", "empty OS"},
            {"linux/arm/", "empty variant"},
            {"linux/arm/v7/x", "more than os/arch/variant"},
            {"linux/am d64", "\" \" in the architecture"},
            {"bogus", "neither a known OS nor a known architecture"},
        };
        for (const auto& c : bad) {
            CAPTURE(c.first);
            std::error_code ec;
            std::string detail;
            parse_platform(c.first, ec, &detail);
            CHECK(ec == errc::invalid_platform);
            CHECK_MESSAGE(detail.find(c.second) != std::string::npos, detail);
        }
    }

    TEST_CASE("platforms: what runs where, best first (containerd's platforms.Only)") {
        auto list = [](std::string_view want) {
            std::string s;
            for (const auto& p : compatible_platforms(parse_platform(want)))
                s += format(p) + " ";
            return s;
        };
        CHECK(list("linux/amd64") == "linux/amd64 linux/386 ");
        CHECK(list("linux/amd64/v3") == "linux/amd64/v3 linux/amd64/v2 linux/amd64 linux/386 ");
        CHECK(list("linux/arm64") ==
              "linux/arm64/v8 linux/arm/v8 linux/arm/v7 linux/arm/v6 linux/arm/v5 ");
        CHECK(list("linux/arm64/v9") ==
              "linux/arm64/v9 linux/arm64/v8 linux/arm/v8 linux/arm/v7 linux/arm/v6 linux/arm/v5 ");
        CHECK(list("linux/arm/v7") == "linux/arm/v7 linux/arm/v6 linux/arm/v5 ");
        CHECK(list("linux/arm/v5") == "linux/arm/v5 ");
        CHECK(list("linux/ppc64le") == "linux/ppc64le ");

        CHECK(platform_rank(parse_platform("linux/arm64"),
                            platform{"linux", "aarch64", "", "", {}}) == 0);
        CHECK(platform_rank(parse_platform("linux/arm64"),
                            platform{"linux", "arm", "v7", "", {}}) == 2);
        CHECK(platform_rank(parse_platform("linux/amd64"),
                            platform{"linux", "arm64", "", "", {}}) == -1);
        CHECK(platform_rank(parse_platform("linux/amd64"),
                            platform{"windows", "amd64", "", "", {}}) == -1);
        CHECK(platform_rank(parse_platform("linux/arm/v6"),
                            platform{"linux", "arm", "v7", "", {}}) == -1);
        // os.version and os.features count only when wanted.
        platform win{"windows", "amd64", "", "10.0.17763.1", {"win32k"}};
        CHECK(platform_rank(parse_platform("windows/amd64"), win) == 0);
        platform want_win = parse_platform("windows/amd64");
        want_win.os_version = "10.0.20348.1";
        CHECK(platform_rank(want_win, win) == -1);
    }

    TEST_CASE("platforms: choosing an index entry") {
        image_index ix;
        ix.manifests = {entry("linux/386", '1'),      entry("linux/amd64", '2'),
                        entry("linux/arm/v6", '3'),   entry("linux/arm/v7", '4'),
                        entry("linux/arm64/v8", '5'), entry("unknown/unknown", '6'),
                        entry("linux/s390x", '7')};
        CHECK(chosen(ix, "linux/amd64") == "linux/amd64");
        CHECK(chosen(ix, "linux/x86_64") == "linux/amd64");
        CHECK(chosen(ix, "linux/aarch64") == "linux/arm64/v8");
        CHECK(chosen(ix, "linux/arm/v7") == "linux/arm/v7");
        CHECK(chosen(ix, "linux/armhf") == "linux/arm/v7");
        CHECK(chosen(ix, "linux/arm/v6") == "linux/arm/v6");
        CHECK(chosen(ix, "linux/s390x") == "linux/s390x");
        auto none = chosen(ix, "linux/ppc64le");
        CHECK(none.find("no image for linux/ppc64le") != std::string::npos);
        CHECK(none.find("linux/arm64/v8") != std::string::npos);

        // Fallbacks in containerd's order, whatever the index's order.
        image_index arm_only;
        arm_only.manifests = {entry("linux/arm/v5", '1'), entry("linux/arm/v7", '2'),
                              entry("linux/arm/v6", '3')};
        CHECK(chosen(arm_only, "linux/arm64") == "linux/arm/v7");
        CHECK(chosen(arm_only, "linux/arm/v6") == "linux/arm/v6");
        image_index x86;
        x86.manifests = {entry("linux/386", '1'), entry("linux/amd64/v2", '2')};
        CHECK(chosen(x86, "linux/amd64") == "linux/386"); // v2 needs a v2 CPU
        CHECK(chosen(x86, "linux/amd64/v3") == "linux/amd64/v2");
        // The first of equals wins; arm64 without a variant is arm64/v8.
        image_index twins;
        twins.manifests = {entry("linux/arm64", '1'), entry("linux/arm64/v8", '2')};
        std::error_code ec;
        CHECK(select_platform(twins, parse_platform("linux/arm64"), ec)->digest.hex()[0] == '1');
        // Entries without a platform come last; non-image entries are never chosen.
        image_index mixed;
        mixed.manifests = {entry("", '1'), entry("linux/amd64", '2')};
        CHECK(select_platform(mixed, parse_platform("linux/amd64"), ec)->digest.hex()[0] == '2');
        CHECK(select_platform(mixed, parse_platform("linux/arm64"), ec)->digest.hex()[0] == '1');
        mixed.manifests[0].media_type = "application/vnd.example.signature";
        CHECK(select_platform(mixed, parse_platform("linux/arm64"), ec) == nullptr);
        CHECK(ec == errc::no_matching_platform);
    }

} // TEST_SUITE
