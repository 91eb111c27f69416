#!/bin/sh
# Step 2 of the restore Job (postgres image): restore the dump into $PGDATABASE, once per $RESTORE_ID.
# - an id already recorded in table langflow_platform_restores: nothing to do (the hook runs at every upgrade);
# - a database whose tables hold any row: refused, unless $RESTORE_FORCE or this is the release's first install
#   ($RESTORE_INTO_NEW_RELEASE: the database was created by this install and holds Langflow's start rows only);
# - otherwise the dump's objects are dropped and restored, as the application role (objects end up owned by it),
#   and the id is recorded in the same transaction: a restore either happens and is recorded, or neither.
set -eu
. "$(dirname "$0")/credentials.sh"
pgpass
MARKER=langflow_platform_restores
# schema-qualified: the SQL pg_restore writes empties search_path
TABLE=public.$MARKER
# a fresh cluster may still be starting: wait for the server (bounded by the Job's activeDeadlineSeconds)
i=0
until pg_isready -q; do
  i=$((i + 1)); [ "$i" -le 120 ] || { echo "database $PGHOST:$PGPORT not ready" >&2; exit 1; }
  sleep 5
done
sql() { psql --no-psqlrc --quiet --tuples-only --no-align -v ON_ERROR_STOP=1 -v id="$RESTORE_ID" "$@"; }

sql <<SQL
CREATE TABLE IF NOT EXISTS $TABLE (
  id text PRIMARY KEY, dump text NOT NULL, bytes bigint NOT NULL, restored_at timestamptz NOT NULL DEFAULT now()
);
SQL
done_at=$(sql <<SQL
SELECT restored_at FROM $TABLE WHERE id = :'id';
SQL
)
if [ -n "$done_at" ]; then
  echo "restore $RESTORE_ID was done at $done_at: nothing to do (set a new database.restore.id to restore again)"
  exit 0
fi

if [ "$RESTORE_FORCE" != "true" ] && [ "$RESTORE_INTO_NEW_RELEASE" != "true" ]; then
  # tables (outside the system schemas and the marker) that hold at least one row
  holding=$(sql <<SQL
SELECT string_agg(format('%I.%I', schemaname, relname), ', ' ORDER BY schemaname, relname)
FROM pg_stat_user_tables t
WHERE relname NOT IN ('$MARKER', 'alembic_version')
  AND (xpath('/row/e/text()', query_to_xml(format('SELECT EXISTS (SELECT 1 FROM %I.%I) AS e', schemaname, relname),
                                         false, true, '')))[1]::text = 'true';
SQL
)
  if [ -n "$holding" ]; then
    echo "ERROR: restore $RESTORE_ID refused: database $PGDATABASE already holds data (tables $holding)." >&2
    echo "A restore replaces it. To do so on purpose, set database.restore.force=true for this upgrade." >&2
    exit 1
  fi
fi

pg_restore --list "$BACKUP_DIR/restore.dump" > /dev/null
bytes=$(wc -c < "$BACKUP_DIR/restore.dump")
start=$(date +%s)
# pg_restore writes the restore as SQL; psql runs it and the record of this id as one transaction
{
  pg_restore --clean --if-exists --no-owner --no-privileges --file - "$BACKUP_DIR/restore.dump"
  printf "INSERT INTO %s (id, dump, bytes) VALUES (:'id', :'dump', %s)\n  ON CONFLICT (id) DO UPDATE SET dump = EXCLUDED.dump, bytes = EXCLUDED.bytes, restored_at = now();\n" "$TABLE" "$bytes"
} | sql --single-transaction -v dump="$RESTORE_DUMP" --file -
echo "restore $RESTORE_ID: restored $bytes bytes ($RESTORE_DUMP) into $PGDATABASE in $(( $(date +%s) - start ))s"
