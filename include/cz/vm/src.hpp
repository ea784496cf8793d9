// cz/vm/src.hpp — include in exactly one .cpp when building with CZ_SEPARATE_COMPILATION.
#pragma once

#if !defined(CZ_SEPARATE_COMPILATION)
#error "cz/vm/src.hpp is for builds that define CZ_SEPARATE_COMPILATION"
#endif

#include <cz/vm/impl/accel.ipp>
#include <cz/vm/impl/config.ipp>
#include <cz/vm/impl/cpio.ipp>
#include <cz/vm/impl/error.ipp>
#include <cz/vm/impl/initramfs.ipp>
#include <cz/vm/impl/kernel.ipp>
#include <cz/vm/impl/machine.ipp>
#include <cz/vm/impl/process.ipp>
#include <cz/vm/impl/qemu.ipp>
#include <cz/vm/impl/qmp.ipp>
#include <cz/vm/impl/run.ipp>
#include <cz/vm/impl/shared_dir.ipp>
#include <cz/vm/impl/template.ipp>
