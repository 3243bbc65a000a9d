#!/bin/sh
# Prints the greeting; version @VERSION@ is stamped in at build time.
echo "${GREETING}, ${1:-stranger} (hello @VERSION@)"
