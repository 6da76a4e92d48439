#!/usr/bin/env bash
# Apicurio Registry (the local zones' schema registry) into .kafka/registry:
# fetch-jars.sh copies its runnable tar.gz from Maven Central into .kafka/registry-dist,
# then it is unpacked here (quarkus-run.jar at the top of .kafka/registry) and the archive
# deleted. Needs Java 21+ to run (corridor.zones.registry finds one), not to fetch.
# On failure: one line saying why, exit 1.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/infra/fetch-jars.sh" infra/registry/pom.xml registry-dist "the Apicurio Registry" || exit 1
archive=$(ls "$root"/.kafka/registry-dist/apicurio-registry-app-*-all.tar.gz 2>/dev/null | head -1)
if [ -z "$archive" ]; then
  echo "corridor: no apicurio-registry-app-*-all.tar.gz in .kafka/registry-dist after the fetch" >&2
  exit 1
fi
out="$root/.kafka/registry"
tmp="$out.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
if ! tar -xzf "$archive" -C "$tmp"; then
  echo "corridor: could not unpack $(basename "$archive") into .kafka/registry" >&2
  rm -rf "$tmp"
  exit 1
fi
# The archive may hold its layout under one top folder: lift it so quarkus-run.jar is at the top.
run=$(find "$tmp" -maxdepth 3 -name quarkus-run.jar | head -1)
if [ -z "$run" ]; then
  echo "corridor: $(basename "$archive") has no quarkus-run.jar (not the runnable layout)" >&2
  rm -rf "$tmp"
  exit 1
fi
top=$(dirname "$run")
name=$(basename "$archive" .tar.gz)
rm -rf "$out" && mv "$top" "$out" && rm -rf "$tmp" "$root/.kafka/registry-dist"
echo "the Apicurio Registry: $name unpacked in .kafka/registry"
