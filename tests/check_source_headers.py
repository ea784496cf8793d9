#!/usr/bin/env python3
"""Checks that every out-of-line body a header pulls in header-only is compiled by a source header.

usage: check_source_headers.py INCLUDE_DIR

A header includes its `impl/*.ipp` under `#if CZ_HEADER_ONLY`; with CZ_SEPARATE_COMPILATION that
body is compiled only if one of the source headers of the header's module (`src.hpp`,
`<piece>_src.hpp`) includes it. A body left out links only as long as nobody calls it, so the
link tests cannot see it: this check does. Prints each body left out, with the header that
wants it, and exits 1 if there is one.
"""
import pathlib
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*<([^>]+\.ipp)>')


def header_only_bodies(header):
    """The .ipp files `header` includes inside `#if CZ_HEADER_ONLY` blocks."""
    bodies, inside = [], False
    for line in header.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith('#if') and 'CZ_HEADER_ONLY' in stripped:
            inside = True
        elif stripped.startswith('#endif'):
            inside = False
        elif inside and (m := INCLUDE.match(line)):
            bodies.append(m.group(1))
    return bodies


def is_source_header(path):
    return path.name == 'src.hpp' or path.name.endswith('_src.hpp')


def main(include_dir):
    root = pathlib.Path(include_dir)
    missing, checked = [], 0
    for header in sorted(root.glob('cz/**/*.hpp')):
        if is_source_header(header):
            continue
        # The module's directory (cz/<module>/), wherever below it the header is.
        rel = header.relative_to(root)
        if len(rel.parts) < 3:
            continue  # an umbrella header (cz/<module>.hpp) has no body of its own
        compiled = set()
        for src in (root / rel.parts[0] / rel.parts[1]).glob('*.hpp'):
            if is_source_header(src):
                compiled.update(m.group(1) for line in src.read_text().splitlines()
                                if (m := INCLUDE.match(line)))
        for body in header_only_bodies(header):
            checked += 1
            if body not in compiled:
                missing.append(f'{body} (wanted by {rel})')
    for m in missing:
        print(f'not in any source header of its module: {m}')
    if checked == 0:
        print(f'no header under {root} includes a body under CZ_HEADER_ONLY: wrong directory?')
        return 1
    print(f'{checked} bodies checked, {len(missing)} missing')
    return 1 if missing else 0


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
