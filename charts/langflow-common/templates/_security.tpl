{{/*
Security contexts meeting Pod Security "restricted": non-root, no privilege escalation, all capabilities
dropped, seccomp RuntimeDefault, read-only root filesystem. Values may add to or override the defaults
(podSecurityContext / containerSecurityContext), but the restricted essentials are re-asserted unless the
chart's value explicitly sets them otherwise.
*/}}
{{- define "langflow-common.podSecurityContext" -}}
{{- $defaults := dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault") "fsGroupChangePolicy" "OnRootMismatch" -}}
{{- toYaml (merge (deepCopy (.Values.podSecurityContext | default dict)) $defaults) -}}
{{- end -}}

{{/* Usage: include "langflow-common.containerSecurityContext" (dict "context" $ "override" .Values.x.containerSecurityContext) */}}
{{- define "langflow-common.containerSecurityContext" -}}
{{- $ctx := .context | default . -}}
{{- $override := .override | default ($ctx.Values.containerSecurityContext | default dict) -}}
{{- $defaults := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "privileged" false "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- toYaml (merge (deepCopy $override) $defaults) -}}
{{- end -}}
