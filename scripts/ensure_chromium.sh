#!/bin/sh
# The first step of `make test`: headless Chromium for the browser tests
# (tests/test_report.py, tests/test_bias_report.py, marked `browser`).
#
#   on PATH (chromium, chromium-browser or google-chrome)  -> nothing to do, exit 0
#   absent, root or passwordless sudo, apt-get available   -> apt-get install chromium
#   otherwise, or the install fails                        -> ONE line on stderr, exit 1
#
# so `make test` stops before pytest instead of running a suite whose browser tests
# cannot pass. Only shell built-ins and PATH commands (id, sudo, apt-get) are used:
# tests/test_ensure_chromium.py drives the decisions with a fake PATH.
set -u

have_browser() {
    for name in chromium chromium-browser google-chrome; do
        command -v "$name" >/dev/null 2>&1 && return 0
    done
    return 1
}

stop() {
    echo "make test needs Chromium for the browser tests and $1: install it" \
         "(Debian/Ubuntu: sudo apt-get install chromium) and rerun make test" >&2
    exit 1
}

have_browser && exit 0

if [ "$(id -u 2>/dev/null)" = 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root="sudo -n"
else
    stop "cannot install it (not root, no passwordless sudo)"
fi
command -v apt-get >/dev/null 2>&1 || stop "cannot install it (no apt-get)"

echo "installing chromium with apt-get for the browser tests" >&2
# `env` sets the variable past sudo's environment reset.
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 \
    && $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
        >/dev/null 2>&1 \
    || stop "apt-get install chromium failed"
have_browser || stop "apt-get installed no chromium on PATH"
