#!/usr/bin/env bash
# Fetch the jars of one Maven pom from Maven Central into a folder of .kafka/.
#   infra/fetch-jars.sh POM OUT_DIR LABEL
# e.g. infra/fetch-jars.sh infra/kafka/pom.xml libs "the Kafka jars".
# On failure: one line saying why, the full log in .kafka/<OUT_DIR>-mvn.log, exit 1.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pom="$root/$1"
name="$2"
label="$3"
out="$root/.kafka/$name"
log="$root/.kafka/$name-mvn.log"
mkdir -p "$root/.kafka"
if ! command -v "${MVN:-mvn}" >/dev/null 2>&1; then
  echo "corridor: Maven (mvn) not found: install it (apt-get install maven)" >&2
  exit 1
fi
tmp="$out.tmp"
rm -rf "$tmp"
if ! "${MVN:-mvn}" -B -q ${MAVEN_EXTRA_ARGS:-} -f "$pom" \
     dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
  cause=$(grep -m1 -E "^\[ERROR\]" "$log" | sed 's/^\[ERROR\] *//' | cut -c1-240)
  echo "corridor: could not fetch $label from Maven Central: ${cause:-mvn failed} (full log: .kafka/$name-mvn.log)" >&2
  rm -rf "$tmp"
  exit 1
fi
rm -rf "$out" && mv "$tmp" "$out"
echo "$label: $(ls "$out" | wc -l) files in .kafka/$name"
