#!/usr/bin/env bash
# Apache Kafka's broker jars into .kafka/libs (see fetch-jars.sh).
exec bash "$(dirname "$0")/fetch-jars.sh" infra/kafka/pom.xml libs "the Kafka jars"
