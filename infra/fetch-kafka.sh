#!/usr/bin/env bash
# Fetch Apache Kafka's broker jars from Maven Central into .kafka/libs.
# On failure: one line saying why, the full log in .kafka/mvn.log, exit 1.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$root/.kafka/libs"
log="$root/.kafka/mvn.log"
mkdir -p "$root/.kafka"
if ! command -v "${MVN:-mvn}" >/dev/null 2>&1; then
  echo "corridor: Maven (mvn) not found: install it (apt-get install maven)" >&2
  exit 1
fi
tmp="$out.tmp"
rm -rf "$tmp"
if ! "${MVN:-mvn}" -B -q ${MAVEN_EXTRA_ARGS:-} -f "$root/infra/kafka/pom.xml" \
     dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
  cause=$(grep -m1 -E "^\[ERROR\]" "$log" | sed 's/^\[ERROR\] *//' | cut -c1-240)
  echo "corridor: could not fetch the Kafka jars from Maven Central: ${cause:-mvn failed} (full log: .kafka/mvn.log)" >&2
  rm -rf "$tmp"
  exit 1
fi
rm -rf "$out" && mv "$tmp" "$out"
echo "Kafka jars: $(ls "$out" | wc -l) files in .kafka/libs"
