// cz/agent/client_src.hpp — with CZ_SEPARATE_COMPILATION, include in exactly one .cpp beside
// <cz/agent/src.hpp> when the program uses the client (cz/agent/client.hpp). Needs Asio; src.hpp
// stays free of it for programs that use the protocol without the client, such as cz-init.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/agent/client_src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/agent/impl/client.ipp>
