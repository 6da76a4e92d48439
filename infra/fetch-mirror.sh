#!/usr/bin/env bash
# Fetch Apache Kafka's MirrorMaker 2 jars (connect-mirror) from Maven Central into
# .kafka/mirror-libs, for `make bench`. On failure: one line saying why, the full log in
# .kafka/mirror-mvn.log, exit 1.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.kafka/mirror-libs"
log="$root/.kafka/mirror-mvn.log"
mkdir -p "$root/.kafka"
if ! command -v "${MVN:-mvn}" >/dev/null 2>&1; then
  echo "corridor: Maven (mvn) not found: install it (apt-get install maven)" >&2
  exit 1
fi
tmp="$out.tmp"
rm -rf "$tmp"
if ! "${MVN:-mvn}" -B -q ${MAVEN_EXTRA_ARGS:-} -f "$root/infra/mirror/pom.xml" \
     dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
  cause=$(grep -m1 -E "^\[ERROR\]" "$log" | sed 's/^\[ERROR\] *//' | cut -c1-240)
  echo "corridor: could not fetch the MirrorMaker 2 jars from Maven Central: ${cause:-mvn failed} (full log: .kafka/mirror-mvn.log)" >&2
  rm -rf "$tmp"
  exit 1
fi
rm -rf "$out" && mv "$tmp" "$out"
echo "MirrorMaker 2 jars: $(ls "$out" | wc -l) files in .kafka/mirror-libs"
