// cz/container/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/container/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/container/impl/control.ipp>
#include <cz/container/impl/copy.ipp>
#include <cz/container/impl/error.ipp>
#include <cz/container/impl/guest.ipp>
#include <cz/container/impl/log.ipp>
#include <cz/container/impl/pull.ipp>
#include <cz/container/impl/rootfs.ipp>
#include <cz/container/impl/run.ipp>
#include <cz/container/impl/spec.ipp>
#include <cz/container/impl/state.ipp>
#include <cz/container/impl/supervisor.ipp>
#include <cz/container/impl/template.ipp>
#include <cz/container/impl/volume.ipp>
