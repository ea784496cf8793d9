// The one file of the cz tool that compiles cz's out-of-line code (CZ_SEPARATE_COMPILATION, set
// for the whole tool in examples/meson.build). The command files see declarations only, so each
// body is compiled once here rather than in every command file that calls it (`cz run`'s file
// alone took 110 s to compile header-only on two cores, and takes 20 s).
#include <cz/agent/client_src.hpp>
#include <cz/agent/src.hpp>
#include <cz/container/src.hpp>
#include <cz/core/compression_src.hpp>
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
#include <cz/ext4/src.hpp>
#include <cz/netlink/src.hpp>
#include <cz/oci/registry_src.hpp>
#include <cz/oci/src.hpp>
#include <cz/tar/src.hpp>
#include <cz/vm/src.hpp>
#include <cz/vsock/src.hpp>
