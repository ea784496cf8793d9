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

echo "consumer: pkg-config build ok"
