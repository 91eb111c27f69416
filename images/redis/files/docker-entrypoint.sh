#!/bin/sh
# Entrypoint of the redis look-alike (images/redis/README.md). The charts replace it (command: sh
# /etc/redis/*-start.sh); it serves `docker run`-style use: flags or a *.conf as first argument mean redis-server.
set -eu
case "${1:-}" in -* | *.conf) set -- redis-server "$@" ;; esac
# as the official image: a private umask for the data files unless one was set
if [ "$(umask)" = 0022 ]; then umask 0077; fi
exec "$@"
