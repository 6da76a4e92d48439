#!/usr/bin/env bash
# Kafka Connect's worker jars into .kafka/connect/libs and the Debezium PostgreSQL connector
# into its plugin folder .kafka/connect/plugins/debezium-postgres (see fetch-jars.sh).
set -uo pipefail
here="$(dirname "$0")"
mkdir -p "$here/../.kafka/connect/plugins"
bash "$here/fetch-jars.sh" infra/connect/pom.xml connect/libs "the Kafka Connect jars" || exit 1
exec bash "$here/fetch-jars.sh" infra/connect/debezium/pom.xml connect/plugins/debezium-postgres \
  "the Debezium PostgreSQL connector"
