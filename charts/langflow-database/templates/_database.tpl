{{/* Database name and owner: global.database.name / user, defaulting to "langflow". */}}
{{- define "langflow-database.dbName" -}}
{{- ((.Values.global).database).name | default "langflow" -}}
{{- end -}}
{{- define "langflow-database.dbUser" -}}
{{- ((.Values.global).database).user | default "langflow" -}}
{{- end -}}

{{/* The credentials Secret: existingSecret, global.database.existingSecret, or the generated one. */}}
{{- define "langflow-database.secretName" -}}
{{- .Values.existingSecret | default ((.Values.global).database).existingSecret | default (include "langflow-common.suffixed" (dict "context" . "suffix" "credentials")) -}}
{{- end -}}
{{- define "langflow-database.generateSecret" -}}
{{- if not (or .Values.existingSecret ((.Values.global).database).existingSecret) }}true{{ end -}}
{{- end -}}

{{/* StorageClass of a volume: its own, else global.storageClass, else none (cluster default). */}}
{{- define "langflow-database.storageClass" -}}
{{- .storageClass | default ((.context.Values.global).storageClass) | default "" -}}
{{- end -}}

{{/* The host the backup/restore jobs connect to. */}}
{{/* The external server (mode external): global.database.host/port, else database.external.host/port. */}}
{{- define "langflow-database.externalHost" -}}
{{- ((.Values.global).database).host | default .Values.external.host -}}
{{- end -}}
{{- define "langflow-database.externalPort" -}}
{{- ((.Values.global).database).port | default .Values.external.port -}}
{{- end -}}

{{- define "langflow-database.backupHost" -}}
{{- $v := .Values -}}
{{- if $v.backup.host -}}{{ $v.backup.host }}
{{- else if eq $v.mode "external" -}}{{ include "langflow-database.externalHost" . }}
{{- else -}}{{ include "langflow-common.fullname" . }}{{- end -}}
{{- end -}}

{{- define "langflow-database.backupPort" -}}
{{- if eq .Values.mode "external" -}}{{ include "langflow-database.externalPort" . }}{{- else -}}5432{{- end -}}
{{- end -}}

{{/* The CA that verifies this chart's server, when the clients verify it and global.database.tls.caSecret names
none: in mode ha CloudNativePG's server CA ("<cluster>-ca", key ca.crt; the server certificate it issues names the
Pooler too, see ha-cluster.yaml); in modes standalone and external none is known (the CA is the user's).
Usage: include "langflow-database.caSecret" . */}}
{{- define "langflow-database.caSecret" -}}
{{- if eq .Values.mode "ha" -}}{{ include "langflow-common.suffixed" (dict "context" . "suffix" "pg-ca") }}{{- end -}}
{{- end -}}

{{/* The Pooler's Service names in the server certificate: what the clients dial (the connection contract's
"<release>-database"), short and qualified. Usage: include "langflow-database.poolerDNSNames" . | fromYamlArray */}}
{{- define "langflow-database.poolerDNSNames" -}}
{{- $svc := include "langflow-common.fullname" . -}}
{{- $ns := include "langflow-common.namespace" . -}}
{{- toYaml (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns .Values.ha.clusterDomain)) -}}
{{- end -}}

{{/* Checks run by every mode. */}}
{{- define "langflow-database.validate" -}}
{{- /* the clients' CA (fails when they verify the server and no CA is known); the apps derive CloudNativePG's */}}
{{- $_ := include "langflow-common.databaseTLS.ca" (dict "context" . "defaultSecret" (include "langflow-database.caSecret" .)) -}}
{{- if eq .Values.mode "external" -}}
{{- include "langflow-common.validate.required" (dict "value" (include "langflow-database.externalHost" .) "key" "database.external.host (or global.database.host)" "why" "mode external needs the server's DNS name") -}}
{{- include "langflow-common.validate.required" (dict "value" (.Values.existingSecret | default ((.Values.global).database).existingSecret) "key" "global.database.existingSecret (or database.existingSecret)" "why" "mode external takes its credentials from an existing Secret (username/password)") -}}
{{- end -}}
{{- if .Values.backup.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.backup.s3.bucket "key" "database.backup.s3.bucket" "why" "backups need a bucket") -}}
{{- end -}}
{{- if .Values.restore.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.backup.s3.bucket "key" "database.backup.s3.bucket" "why" "the restore Job reads dumps from the backup bucket") -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.restore.id "key" "database.restore.id" "why" "a restore runs once per id (recorded in the database); name this one, e.g. 2026-12-02-incident-42") -}}
{{- end -}}
{{- if and (eq .Values.mode "ha") .Values.ha.recovery.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.ha.recovery.destinationPath "key" "database.ha.recovery.destinationPath" "why" "the origin cluster's barman object store, e.g. s3://bucket/cnpg") -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.ha.recovery.serverName "key" "database.ha.recovery.serverName" "why" "the origin Cluster's name (its folder in the object store)") -}}
{{- if and .Values.ha.barmanObjectStore.enabled (eq (.Values.ha.barmanObjectStore.destinationPath | trimSuffix "/") (.Values.ha.recovery.destinationPath | trimSuffix "/")) (eq (.Values.ha.barmanObjectStore.serverName | default (include "langflow-common.suffixed" (dict "context" . "suffix" "pg"))) .Values.ha.recovery.serverName) -}}
{{- fail "database.ha.barmanObjectStore.serverName must differ from database.ha.recovery.serverName: the recovered cluster must not archive into the origin's folder" -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.mode "ha") .Values.ha.barmanObjectStore.enabled -}}
{{- include "langflow-common.validate.required" (dict "value" .Values.ha.barmanObjectStore.destinationPath "key" "database.ha.barmanObjectStore.destinationPath" "why" "e.g. s3://bucket/prefix") -}}
{{- end -}}
{{- if gt (int .Values.ha.maxSyncReplicas) (sub (int .Values.ha.instances) 1) -}}
{{- fail (printf "database.ha.maxSyncReplicas (%d) must be lower than database.ha.instances (%d)" (int .Values.ha.maxSyncReplicas) (int .Values.ha.instances)) -}}
{{- end -}}
{{- if gt (int .Values.ha.minSyncReplicas) (int .Values.ha.maxSyncReplicas) -}}
{{- fail "database.ha.minSyncReplicas must not be greater than database.ha.maxSyncReplicas" -}}
{{- end -}}
{{- end -}}

{{/* s3Credentials of a barman object store: keys of a Secret, or the pod's IAM role. Usage: include ... "<secret or empty>" */}}
{{- define "langflow-database.s3Credentials" -}}
s3Credentials:
{{- if . }}
  accessKeyId:
    name: {{ . }}
    key: ACCESS_KEY_ID
  secretAccessKey:
    name: {{ . }}
    key: ACCESS_SECRET_KEY
{{- else }}
  inheritFromIAMRole: true
{{- end }}
{{- end -}}
