#!/usr/bin/env bash
# System packages the tests need that no Python or npm package provides: Debian's Chromium for
# the browser tests (test tools' own browser downloads cannot work offline), and grpc-gateway's
# protoc-gen-swagger, with which a contract test regenerates the OpenAPI document, and a CJK font
# so that the Chinese screens' screenshots show characters rather than empty boxes.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v protoc-gen-swagger >/dev/null 2>&1 || missing+=(golang-grpc-gateway)
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-zenhei)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})." >&2
  exit 1
fi
echo "installing Debian ${missing[*]} for the tests ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
