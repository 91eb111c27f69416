{{/*
Generated secrets, created once and kept: on upgrade the value already stored in the cluster is reused
(lookup); on first install a random one is generated. `helm template` (no cluster) always generates.
Usage: include "langflow-common.secretValue" (dict "context" $ "secret" "<secret name>" "key" "password" "length" 32)
Returns the base64-encoded value, ready for a Secret's data field.
*/}}
{{- define "langflow-common.secretValue" -}}
{{- $ns := include "langflow-common.namespace" .context -}}
{{- $existing := lookup "v1" "Secret" $ns .secret -}}
{{- if and $existing (index ($existing.data | default dict) .key) -}}
{{- index $existing.data .key -}}
{{- else if .value -}}
{{- .value | toString | b64enc -}}
{{- else -}}
{{- randAlphaNum (.length | default 32 | int) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Annotations that keep a generated Secret across uninstall/upgrade races. */}}
{{- define "langflow-common.keepAnnotations" -}}
helm.sh/resource-policy: keep
{{- end -}}
