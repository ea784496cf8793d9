// Fuzzes the docker-save manifest.json parser: it either returns the images, every field a string
// from the input, or fails with a cz.oci error and a detail naming what is wrong.
#include <cz/oci/archive.hpp>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::error_code ec;
    std::string detail;
    auto images = cz::oci::parse_docker_manifest(bytes, ec, &detail);
    if (ec) {
        if (ec.category() != cz::oci::oci_category() || detail.empty() || !images.empty())
            __builtin_trap();
        return 0;
    }
    // Each image came from an object of the array: at least "{}" per image, plus the config name.
    std::size_t least = 2;
    for (const auto& image : images)
        least += 2 + image.config.size();
    if (least > size + 2) __builtin_trap();
    return 0;
}
