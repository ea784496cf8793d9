// cz/agent/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/agent/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/agent/impl/credit.ipp>
#include <cz/agent/impl/error.ipp>
#include <cz/agent/impl/frame.ipp>
#include <cz/agent/impl/handshake.ipp>
#include <cz/agent/impl/protocol.ipp>
