// The one TU that compiles cz's out-of-line code for the CZ_SEPARATE_COMPILATION test build.
#include <cz/agent/client_src.hpp>
#include <cz/agent/src.hpp>
#include <cz/container/src.hpp>
#include <cz/core/compression_src.hpp>
#include <cz/core/sha256_src.hpp>
#include <cz/core/src.hpp>
#include <cz/ext4/src.hpp>
#include <cz/oci/registry_src.hpp>
#include <cz/oci/src.hpp>
#include <cz/tar/src.hpp>
#include <cz/vm/src.hpp>
#include <cz/vsock/src.hpp>
