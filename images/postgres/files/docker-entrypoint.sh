#!/bin/sh
# Entrypoint of the postgres look-alike (images/postgres/README.md): on an empty $PGDATA it runs initdb with the
# superuser password, creates POSTGRES_DB, runs /docker-entrypoint-initdb.d/* against a socket-only temporary
# server, then execs the server. Environment as in the official image: POSTGRES_PASSWORD(_FILE),
# POSTGRES_USER(_FILE), POSTGRES_DB(_FILE), POSTGRES_INITDB_ARGS(_FILE), POSTGRES_HOST_AUTH_METHOD, PGDATA.
set -eu

# file_env NAME [DEFAULT]: NAME from the environment, or from the file named by NAME_FILE (never both)
file_env() {
	eval "fe_val=\${$1:-} fe_file=\${$1_FILE:-}"
	if [ -n "$fe_val" ] && [ -n "$fe_file" ]; then
		echo "error: both $1 and $1_FILE are set (but are exclusive)" >&2
		exit 1
	fi
	if [ -n "$fe_file" ]; then fe_val=$(cat "$fe_file"); fi
	export "$1=${fe_val:-${2:-}}"
	unset "$1_FILE"
}

# psql as the superuser over the Unix socket of the temporary server
sql() {
	PGHOST='' PGHOSTADDR='' psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

# initdb needs a passwd entry for the current uid (999 is postgres; any other uid gets a fake one from nss_wrapper)
nss_wrap() {
	getent passwd "$(id -u)" > /dev/null 2>&1 && return 0
	for lib in /usr/lib/*/libnss_wrapper.so /usr/lib/libnss_wrapper.so; do
		[ -s "$lib" ] || continue
		NSS_WRAPPER_PASSWD=$(mktemp)
		NSS_WRAPPER_GROUP=$(mktemp)
		printf 'postgres:x:%s:%s:PostgreSQL:%s:/bin/false\n' "$(id -u)" "$(id -g)" "$PGDATA" > "$NSS_WRAPPER_PASSWD"
		printf 'postgres:x:%s:\n' "$(id -g)" > "$NSS_WRAPPER_GROUP"
		export LD_PRELOAD="$lib" NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
		return 0
	done
}

nss_unwrap() {
	[ -n "${NSS_WRAPPER_PASSWD:-}" ] || return 0
	rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
	unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
}

# single-quote each argument for the shell pg_ctl starts the server with
quote_args() {
	for a; do printf "'%s' " "$(printf '%s' "$a" | sed "s/'/'\\\\''/g")"; done
}

init_database() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		echo "error: database is uninitialized and superuser password is not specified (POSTGRES_PASSWORD or POSTGRES_PASSWORD_FILE)" >&2
		exit 1
	fi
	ls /docker-entrypoint-initdb.d/ > /dev/null # fail early on an unreadable init directory
	nss_wrap
	# word splitting of POSTGRES_INITDB_ARGS is intended (no globbing)
	set -f
	# shellcheck disable=SC2086
	printf '%s\n' "$POSTGRES_PASSWORD" | initdb --username="$POSTGRES_USER" --pwfile=/dev/stdin $POSTGRES_INITDB_ARGS
	set +f
	nss_unwrap
	# as the official image: listen on every address, password (scram-sha-256) for remote hosts; the charts
	# pass their own config_file/hba_file, which replace both
	printf "\nlisten_addresses = '*'\n" >> "$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" >> "$PGDATA/pg_hba.conf"

	# local connections may need the password (--auth-local=scram-sha-256)
	export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
	pg_ctl -D "$PGDATA" -w start -o "$(quote_args "$@") -c listen_addresses='' -p ${PGPORT:-5432}"

	# (psql interpolates :'db' only in its input, not in -c; "postgres" always exists)
	if [ "$POSTGRES_DB" != postgres ] && [ -z "$(printf "SELECT 1 FROM pg_database WHERE datname = :'db';\n" | sql --dbname postgres --tuples-only --no-align --set db="$POSTGRES_DB")" ]; then
		printf 'CREATE DATABASE :"db";\n' | sql --dbname postgres --set db="$POSTGRES_DB"
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"
					"$f"
				else
					echo "$0: sourcing $f"
					# shellcheck disable=SC1090
					. "$f"
				fi
				;;
			*.sql) echo "$0: running $f"; sql --dbname "$POSTGRES_DB" -f "$f" ;;
			*.sql.gz) echo "$0: running $f"; gzip -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
			*/\*) ;; # empty directory
			*) echo "$0: ignoring $f" ;;
		esac
	done

	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo "PostgreSQL init process complete; ready for start up."
}

# first argument a flag: arguments of the server (the charts pass only args)
case "${1:-}" in -*) set -- postgres "$@" ;; esac

if [ "${1:-}" = postgres ]; then
	for a; do case "$a" in -'?' | --help | --describe-config | -V | --version) exec "$@" ;; esac; done
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" 2> /dev/null || :
	mkdir -p /var/run/postgresql 2> /dev/null || :
	chmod 3775 /var/run/postgresql 2> /dev/null || :
	if [ -s "$PGDATA/PG_VERSION" ]; then
		echo "PostgreSQL database directory appears to contain a database; skipping initialization"
	else
		shift
		init_database "$@"
		set -- postgres "$@"
	fi
fi
exec "$@"
