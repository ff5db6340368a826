#!/usr/bin/env bash
# Builds the farm container image from the release binary, FROM scratch, with no base image
# and no registry: the binary and exactly the shared libraries that `ldd` lists for it are
# copied, at their own paths, into a temporary build context, next to deploy/Dockerfile.
#
# Usage: deploy/build-image.sh [extra docker build args...]
#   FARM_IMAGE  image tag               (default farm:local)
#   FARM_BIN    the binary to package    (default target/release/farm; built with
#                                         `cargo build --release --bin farm` if missing)
#   FARM_STRIP  1 strips debug info from the copy (default 1; the image shrinks ~10x,
#               symbol names for backtraces are kept); 0 keeps the binary as built
#   FARM_KEEP_CONTEXT=1  leaves the build context in place and prints its path
set -euo pipefail
umask 022

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
image=${FARM_IMAGE:-farm:local}
bin=${FARM_BIN:-$root/target/release/farm}

if [[ ! -x $bin ]]; then
    if [[ -z ${FARM_BIN:-} ]] && command -v cargo >/dev/null; then
        echo "build-image: $bin is missing; building it" >&2
        (cd "$root" && cargo build --release --bin farm)
    else
        echo "build-image: $bin is missing or not executable" >&2
        exit 1
    fi
fi
command -v docker >/dev/null || { echo "build-image: docker is not installed" >&2; exit 1; }

ctx=$(mktemp -d "${TMPDIR:-/tmp}/farm-image.XXXXXX")
if [[ ${FARM_KEEP_CONTEXT:-0} == 1 ]]; then
    echo "build-image: context kept in $ctx" >&2
else
    trap 'rm -rf "$ctx"' EXIT
fi
chmod 755 "$ctx"
rootfs=$ctx/rootfs
mkdir -p "$rootfs/etc" "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"
# /var/lib/farm, for a master's journal; the Dockerfile gives it to uid 10001.
mkdir -p "$ctx/state"
chmod 700 "$ctx/state"

# The binary, stripped of debug info unless FARM_STRIP=0.
if [[ ${FARM_STRIP:-1} == 1 ]] && command -v objcopy >/dev/null; then
    objcopy --strip-debug "$bin" "$ctx/farm"
else
    cp "$bin" "$ctx/farm"
fi
chmod 755 "$ctx/farm"

# The shared libraries: every path ldd prints, symlinks resolved, copied to the same path.
# `ldd` lines look like "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or, for the
# loader, "/lib64/ld-linux-x86-64.so.2 (0x...)"; linux-vdso has no file.
ldd_out=$(ldd "$bin" 2>&1) || true
if grep -q 'not found' <<<"$ldd_out"; then
    echo "build-image: ldd cannot resolve every library:" >&2
    echo "$ldd_out" >&2
    exit 1
fi
libs=()
if ! grep -qE 'not a dynamic executable|statically linked' <<<"$ldd_out"; then
    while read -r lib; do
        libs+=("$lib")
    done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$ldd_out" | sort -u)
    if [[ ${#libs[@]} -eq 0 ]]; then
        echo "build-image: ldd listed no library for a dynamic binary:" >&2
        echo "$ldd_out" >&2
        exit 1
    fi
fi
for lib in "${libs[@]}"; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
    chmod 755 "$rootfs$lib"
done
# The directories cp created carry the umask above (0755), so uid 10001 can read the libraries.

# A non-root user and the name-service configuration glibc reads (getaddrinfo looks up the
# master's name in the /etc/hosts and /etc/resolv.conf that Docker or Kubernetes mount).
cat >"$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
farm:x:10001:10001:farm:/tmp:/sbin/nologin
PASSWD
cat >"$rootfs/etc/group" <<'GROUP'
root:x:0:
farm:x:10001:
GROUP
cat >"$rootfs/etc/nsswitch.conf" <<'NSS'
passwd: files
group: files
hosts: files dns
NSS
chmod 644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/nsswitch.conf"

cp "$here/Dockerfile" "$ctx/Dockerfile"

echo "build-image: packaging $bin with ${#libs[@]} libraries: ${libs[*]:-none}" >&2
docker build -t "$image" "$@" "$ctx"
echo "build-image: built $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{ printf "%.1f MB", $1 / 1e6 }'))" >&2
