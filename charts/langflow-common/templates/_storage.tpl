{{/*
File storage of the IDE and the runtime (Langflow 1.13's storage service), from global.storage:
  type local  files on the pod's data volume (LANGFLOW_CONFIG_DIR): one pod's files are not seen by another,
              so more than one IDE replica needs a ReadWriteMany PVC (langflow-ide checks it);
  type s3     LANGFLOW_STORAGE_TYPE=s3 with LANGFLOW_OBJECT_STORAGE_BUCKET_NAME/_PREFIX/_TAGS; credentials from pod
              identity (the ServiceAccount's annotations) or from `s3.existingSecret`, whose key is an AWS shared
              credentials file mounted read-only and named by AWS_SHARED_CREDENTIALS_FILE (never env);
              `s3.endpoint` (AWS_ENDPOINT_URL_S3) for S3-compatible stores.
*/}}

{{/* global.storage with its type checked; fails naming the key.
Usage: include "langflow-common.storage" (dict "context" $) | fromYaml */}}
{{- define "langflow-common.storage" -}}
{{- $s := ((.context.Values.global).storage) | default dict -}}
{{- $type := $s.type | default "local" -}}
{{- if not (has $type (list "local" "s3")) -}}
{{- fail (printf "global.storage.type must be local or s3, got %q" $type) -}}
{{- end -}}
{{- if and (eq $type "s3") (not (($s.s3).bucket)) -}}
{{- fail "global.storage.s3.bucket is required when global.storage.type is s3" -}}
{{- end -}}
{{- toYaml (merge (dict "type" $type) $s) -}}
{{- end -}}

{{/* The storage env entries of a Langflow container.
Usage: include "langflow-common.storage.env" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.storage.env" -}}
{{- $s := include "langflow-common.storage" . | fromYaml -}}
- name: LANGFLOW_STORAGE_TYPE
  value: {{ $s.type | quote }}
{{- if eq $s.type "s3" }}
{{- $s3 := $s.s3 }}
- name: LANGFLOW_OBJECT_STORAGE_BUCKET_NAME
  value: {{ $s3.bucket | quote }}
- name: LANGFLOW_OBJECT_STORAGE_PREFIX
  value: {{ $s3.prefix | default "" | quote }}
{{- with $s3.tags }}
- name: LANGFLOW_OBJECT_STORAGE_TAGS
  value: {{ toJson . | quote }}
{{- end }}
{{- with $s3.region }}
- name: AWS_REGION
  value: {{ . | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ . | quote }}
{{- end }}
{{- with $s3.endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- if $s3.existingSecret }}
- name: AWS_SHARED_CREDENTIALS_FILE
  value: /run/secrets/object-storage/credentials
{{- end }}
{{- end }}
{{- end -}}

{{/* The credentials file's mount (a volumeMounts entry), when s3.existingSecret is set.
Usage: include "langflow-common.storage.volumeMount" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.storage.volumeMount" -}}
{{- $s := include "langflow-common.storage" . | fromYaml -}}
{{- if and (eq $s.type "s3") $s.s3.existingSecret }}
- name: object-storage-credentials
  mountPath: /run/secrets/object-storage
  readOnly: true
{{- end }}
{{- end -}}

{{/* The credentials volume (a volumes entry): the Secret's key as the file `credentials`.
Usage: include "langflow-common.storage.volume" (dict "context" $) | nindent 8 */}}
{{- define "langflow-common.storage.volume" -}}
{{- $s := include "langflow-common.storage" . | fromYaml -}}
{{- if and (eq $s.type "s3") $s.s3.existingSecret }}
- name: object-storage-credentials
  secret:
    secretName: {{ tpl $s.s3.existingSecret .context }}
    defaultMode: 0440
    items:
      - key: {{ $s.s3.credentialsKey | default "credentials" }}
        path: credentials
{{- end }}
{{- end -}}
