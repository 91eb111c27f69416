#!/bin/sh
# Entrypoint of the rabbitmq look-alike (images/rabbitmq/README.md): Debian's RabbitMQ 3.10 behind the
# environment of the official 3.13 image.
set -eu

# as the official image: long node names when the host name is a FQDN
if [ -z "${RABBITMQ_USE_LONGNAME:-}" ] && [ "$(hostname)" != "$(hostname -s)" ]; then
	export RABBITMQ_USE_LONGNAME=true
fi

# RabbitMQ 3.10 refuses to boot on a key its schema lacks. Keys that only 3.13 knows are dropped from a copy
# of the config file (named on stderr); RABBITMQ_CONF_COMPAT=strict keeps the file as it is.
UNSUPPORTED_KEYS='quorum_queue.continuous_membership_reconciliation.'
conf=${RABBITMQ_CONFIG_FILE:-/etc/rabbitmq/rabbitmq.conf}
if [ "${1:-}" = rabbitmq-server ] && [ "${RABBITMQ_CONF_COMPAT:-drop}" != strict ] && [ -f "$conf" ]; then
	pattern=$(printf '%s\n' "$UNSUPPORTED_KEYS" | sed 's/\./\\./g; s/^/^[[:space:]]*/')
	if grep -q "$pattern" "$conf"; then
		compat="${TMPDIR:-/tmp}/rabbitmq-compat.conf"
		grep -v "$pattern" "$conf" > "$compat"
		grep "$pattern" "$conf" | sed 's/^/WARNING: RabbitMQ 3.10 does not know this rabbitmq.conf line, dropped: /' >&2
		export RABBITMQ_CONFIG_FILE="$compat"
	fi
fi
exec "$@"
