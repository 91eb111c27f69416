#!/bin/sh
# Step 1 of the restore Job (aws-cli image): fetch $RESTORE_DUMP ("latest" = the newest dump under the prefix).
set -eu
. "$(dirname "$0")/credentials.sh"
aws_credentials
s3() { if [ -n "${S3_ENDPOINT:-}" ]; then aws --endpoint-url "$S3_ENDPOINT" "$@"; else aws "$@"; fi; }
key="$S3_PREFIX/$RESTORE_DUMP"
if [ "$RESTORE_DUMP" = latest ]; then
  key=$(s3 s3api list-objects-v2 --bucket "$S3_BUCKET" --prefix "$S3_PREFIX/" --query 'Contents[].Key' --output text \
    | tr '\t' '\n' | grep '\.dump$' | sed 's/.*-\([0-9]\{8\}T[0-9]\{6\}Z\)\.dump$/\1 &/' | sort | tail -n1 | cut -d' ' -f2)
  [ -n "$key" ] || { echo "no dump under s3://$S3_BUCKET/$S3_PREFIX/" >&2; exit 1; }
fi
s3 s3 cp --only-show-errors "s3://$S3_BUCKET/$key" "$BACKUP_DIR/restore.dump"
echo "downloaded s3://$S3_BUCKET/$key ($(wc -c < "$BACKUP_DIR/restore.dump") bytes)"
