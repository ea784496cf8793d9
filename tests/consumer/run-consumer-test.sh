#!/bin/sh
# Builds tests/consumer against this checkout of cz (as a subproject) and runs its tests.
# usage: run-consumer-test.sh CZ_SOURCE_ROOT
set -eu
src=${1:?usage: run-consumer-test.sh CZ_SOURCE_ROOT}
work=$(mktemp -d /tmp/cz-consumer.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$src"/tests/consumer/meson.build "$src"/tests/consumer/*.cpp "$work"/
mkdir "$work/subprojects"
ln -s "$(cd "$src" && pwd)" "$work/subprojects/cz"
meson setup --wrap-mode=nodownload "$work/build" "$work" >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; exit 1; }
meson test -C "$work/build" --print-errorlogs

# The same program against an installed cz, found through its pkg-config file alone.
meson setup --wrap-mode=nodownload --prefix "$work/prefix" -Dtests=false -Dexamples=false \
    -Dbenchmarks=false "$work/cz-build" "$src" >"$work/install.log" 2>&1 &&
    meson install -C "$work/cz-build" --quiet >>"$work/install.log" 2>&1 ||
    { cat "$work/install.log"; exit 1; }
pcdir=$(dirname "$(find "$work/prefix" -name cz-core.pc)")
export PKG_CONFIG_PATH=$pcdir
flags=$(pkg-config --cflags --libs cz-core-compression cz-core-sha256)
# shellcheck disable=SC2086 # flags are words
${CXX:-c++} -std=c++20 -Wall -Wextra -Werror -o "$work/digest_pkgconfig" \
    "$src/tests/consumer/main.cpp" $flags
"$work/digest_pkgconfig"

# A tar reader needs fmt and nothing else: cz-tar's flags name no codec and no libcrypto, a
# program compiled once with them links (no --as-needed here, so every library named is linked),
# and the result loads none of those libraries.
flags=$(pkg-config --cflags --libs cz-tar)
case " $flags " in
*crypto* | *" -lz "* | *zstd* | *isal* | *android*)
    echo "consumer: cz-tar's pkg-config flags name a codec or libcrypto: $flags" >&2
    exit 1
    ;;
esac
# shellcheck disable=SC2086 # flags are words
${CXX:-c++} -std=c++20 -Wall -Wextra -Werror -DCZ_SEPARATE_COMPILATION -Wl,--no-as-needed \
    -o "$work/tar_pkgconfig" "$src/tests/consumer/tar_main.cpp" "$src/tests/consumer/tar_src.cpp" \
    $flags
"$work/tar_pkgconfig"
if ldd "$work/tar_pkgconfig" | grep -E 'libcrypto|libz\.|libzstd|libisal'; then
    echo "consumer: a tar-only program loads a codec or libcrypto (above)" >&2
    exit 1
fi
echo "consumer: pkg-config builds ok (cz-tar: $flags)"
