{{/*
Database TLS: the CA every libpq client (psycopg under Langflow, psql, pg_dump, pg_restore) verifies the database
server's certificate against. It is a Secret file mounted read-only at /run/secrets/database-ca/ca.crt and named by
libpq's PGSSLROOTCERT (the database URL stays as it is: libpq reads the variable).

Reads global.database {host, sslmode, tls {caSecret, caKey}}. The CA's Secret is global.database.tls.caSecret (key
global.database.tls.caKey, default ca.crt), or, when sslmode verifies (verify-ca, verify-full) and nothing is set:
  - the caller's "defaultSecret" (the database chart passes its mode's CA, or "" when it has none);
  - else, for the release's own database (global.database.host ""), the bundled HA cluster's server CA: CloudNativePG
    keeps it in Secret "<cluster>-ca", key ca.crt, the cluster being "<release>-database-pg".
A verifying sslmode with no CA fails the render (VALUES VALIDATION). Without verification nothing is mounted unless
caSecret is set.

Usage: include "langflow-common.databaseTLS.ca" (dict "context" $ ["defaultSecret" "<name or empty>"]) | fromYaml
         -> {secret, key} or {} (no CA mounted)
       include "langflow-common.databaseTLS.env" (dict "context" $ ...)          (a PGSSLROOTCERT env entry, or nothing)
       include "langflow-common.databaseTLS.volumeMount" (dict "context" $ ...)  (a volumeMounts entry, or nothing)
       include "langflow-common.databaseTLS.volume" (dict "context" $ ...)       (a volumes entry, or nothing)
*/}}

{{- define "langflow-common.databaseTLS.mountPath" -}}/run/secrets/database-ca{{- end -}}

{{- define "langflow-common.databaseTLS.ca" -}}
{{- $ctx := .context -}}
{{- $d := include "langflow-common.connections.database" $ctx | fromYaml -}}
{{- $tls := $d.tls | default dict -}}
{{- $secret := $tls.caSecret | default "" -}}
{{- if and (not $secret) (has $d.sslmode (list "verify-ca" "verify-full")) -}}
{{- if hasKey . "defaultSecret" -}}
{{- $secret = .defaultSecret -}}
{{- else if not $d.host -}}
{{- $secret = printf "%s-pg-ca" (include "langflow-common.componentFullname" (dict "context" $ctx "component" "database")) -}}
{{- end -}}
{{- if not $secret -}}
{{- fail (printf "VALUES VALIDATION:\nglobal.database.sslmode=%s verifies the database server's certificate, but no CA is known to verify it against: set global.database.tls.caSecret to a Secret holding the CA certificate (key global.database.tls.caKey, default ca.crt), e.g. your RDS region's bundle or the standalone server's database.standalone.tls.existingSecret" $d.sslmode) -}}
{{- end -}}
{{- end -}}
{{- if $secret -}}
secret: {{ $secret | quote }}
key: {{ $tls.caKey | default "ca.crt" | quote }}
{{- end -}}
{{- end -}}

{{- define "langflow-common.databaseTLS.env" -}}
{{- $ca := include "langflow-common.databaseTLS.ca" . | fromYaml -}}
{{- if $ca.secret }}
- name: PGSSLROOTCERT
  value: {{ printf "%s/ca.crt" (include "langflow-common.databaseTLS.mountPath" .) | quote }}
{{- end -}}
{{- end -}}

{{- define "langflow-common.databaseTLS.volumeMount" -}}
{{- $ca := include "langflow-common.databaseTLS.ca" . | fromYaml -}}
{{- if $ca.secret }}
- name: database-ca
  mountPath: {{ include "langflow-common.databaseTLS.mountPath" . }}
  readOnly: true
{{- end -}}
{{- end -}}

{{- define "langflow-common.databaseTLS.volume" -}}
{{- $ca := include "langflow-common.databaseTLS.ca" . | fromYaml -}}
{{- if $ca.secret }}
- name: database-ca
  secret:
    secretName: {{ $ca.secret }}
    items:
      - {key: {{ $ca.key | quote }}, path: ca.crt}
    defaultMode: 0444
{{- end -}}
{{- end -}}
