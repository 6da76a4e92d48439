#!/usr/bin/env bash
# MirrorMaker 2 (connect-mirror) jars into .kafka/mirror-libs, for `make bench`.
exec bash "$(dirname "$0")/fetch-jars.sh" infra/mirror/pom.xml mirror-libs "the MirrorMaker 2 jars"
