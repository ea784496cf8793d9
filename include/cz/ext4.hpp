// cz/ext4.hpp — ext4 images without root or mounts: a formatter that writes a filesystem into a
// sparse file, a reader for any ext4 image, an OCI layer applier and a tar exporter. Needs
// cz/core and cz/tar; no Asio.
#pragma once

#include <cz/ext4/applier.hpp>
#include <cz/ext4/error.hpp>
#include <cz/ext4/export.hpp>
#include <cz/ext4/formatter.hpp>
#include <cz/ext4/layout.hpp>
#include <cz/ext4/reader.hpp>
