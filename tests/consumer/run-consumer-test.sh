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
