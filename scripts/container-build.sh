#!/usr/bin/env bash
# The container image's build and file assembly, outside Docker as well as inside it.
#
# The Dockerfile's builder stage runs this script, and the runtime stage copies the tree it makes
# (ROOTFS) onto debian:bookworm-slim. Running it on Debian 12 with Swift 6 does the same steps, so
# the tests can check the image's files without a Docker engine.
#
#   scripts/container-build.sh                       build, then assemble .build-container/rootfs
#   scripts/container-build.sh --from-binary FILE    assemble from an existing binary (no build)
#   scripts/container-build.sh --dry-run             print the steps, change nothing
#
# Options: --rootfs DIR (default .build-container/rootfs), --scratch-path DIR (the build folder,
# default .build-container/build, so the static build never replaces the development one).
#
# What ROOTFS gets (and so the image, besides Debian's packages):
#   usr/local/bin/sluice                              built with --static-swift-stdlib: it needs
#                                                     only libc, libstdc++, libcurl4, libjansson4, libsystemd0, libhiredis0.14,
#                                                     libmimalloc2.0
#   usr/local/libexec/sluice/swift-backtrace-static   crash backtraces (SWIFT_BACKTRACE), if the toolchain has it
#   etc/sluice/plugins.json                           deploy/container-plugins.json (secrets only by reference)
# No secret is ever copied: the manifest names its secrets as {"env": ...}, and the tests check the tree.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ROOTFS="$ROOT/.build-container/rootfs"
SCRATCH="$ROOT/.build-container/build"
FROM_BINARY=""
DRY_RUN=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { printf 'container-build: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rootfs) ROOTFS="${2:?--rootfs needs a directory}"; shift 2 ;;
        --scratch-path) SCRATCH="${2:?--scratch-path needs a directory}"; shift 2 ;;
        --from-binary) FROM_BINARY="${2:?--from-binary needs a file}"; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

run() {
    printf '+ %s\n' "$*"
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}

# --- 1. the binary ----------------------------------------------------------------------------
if [ -n "$FROM_BINARY" ]; then
    [ -x "$FROM_BINARY" ] || die "$FROM_BINARY is not an executable file"
    BINARY="$FROM_BINARY"
else
    command -v swift >/dev/null || die "swift is not on PATH (the Dockerfile's builder image has it)"
    BUILD=(swift build -c release --static-swift-stdlib --product sluice --scratch-path "$SCRATCH")
    run "${BUILD[@]}"
    BINARY="$SCRATCH/release/sluice"   # SwiftPM links <scratch>/release to the triple's folder
fi

# The toolchain's backtracer, for readable crash reports (optional: older toolchains lack it).
BACKTRACER=""
if command -v swift >/dev/null; then
    TOOLCHAIN_BIN="$(dirname "$(readlink -f "$(command -v swift)")")"
    candidate="$TOOLCHAIN_BIN/../libexec/swift/linux/swift-backtrace-static"
    [ -x "$candidate" ] && BACKTRACER="$(readlink -f "$candidate")"
fi

# --- 2. the runtime tree ----------------------------------------------------------------------
run rm -rf "$ROOTFS"
run install -d -m 0755 "$ROOTFS/usr/local/bin" "$ROOTFS/etc/sluice"
run install -m 0755 "$BINARY" "$ROOTFS/usr/local/bin/sluice"
if [ -n "$BACKTRACER" ]; then
    run install -d -m 0755 "$ROOTFS/usr/local/libexec/sluice"
    run install -m 0755 "$BACKTRACER" "$ROOTFS/usr/local/libexec/sluice/swift-backtrace-static"
fi
run install -m 0644 deploy/container-plugins.json "$ROOTFS/etc/sluice/plugins.json"

if [ "$DRY_RUN" -eq 0 ]; then
    printf 'container-build: %s assembled from %s\n' "$ROOTFS" "$BINARY"
fi
