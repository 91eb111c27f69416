{{/*
Security contexts meeting Pod Security "restricted": non-root, no privilege escalation, all capabilities
dropped, seccomp RuntimeDefault, read-only root filesystem. Values may add to or override the defaults
(podSecurityContext / containerSecurityContext), but the restricted essentials are re-asserted unless the
chart's value explicitly sets them otherwise.
*/}}
{{/* Usage: include "langflow-common.podSecurityContext" . (the chart's podSecurityContext), or
(dict "context" $ "Values" (dict "podSecurityContext" (dict ...))) for a fixed one. */}}
{{- define "langflow-common.podSecurityContext" -}}
{{- $defaults := dict "runAsNonRoot" true "seccompProfile" (dict "type" "RuntimeDefault") "fsGroupChangePolicy" "OnRootMismatch" -}}
{{- $sc := merge (deepCopy (.Values.podSecurityContext | default dict)) $defaults -}}
{{- include "langflow-common.openshift.adapt" (dict "context" (.context | default .) "securityContext" $sc) -}}
{{- end -}}

{{/* OpenShift (global.compatibility.openshift.adaptSecurityContext, Bitnami's convention): with `force`, or `auto`
on a cluster that serves security.openshift.io, a security context loses runAsUser, runAsGroup and fsGroup, which
the restricted-v2 SCC assigns from the namespace's ranges (an arbitrary uid in group 0; the Langflow and worker
images keep their files group-0 writable for it). seccomp RuntimeDefault stays: restricted-v2 allows it.
Usage: include "langflow-common.openshift.adapt" (dict "context" $ "securityContext" $map) -> YAML */}}
{{- define "langflow-common.openshift.adapt" -}}
{{- $sc := .securityContext -}}
{{- if eq (include "langflow-common.openshift.adapting" .context) "true" -}}
{{- $sc = omit $sc "runAsUser" "runAsGroup" "fsGroup" -}}
{{- end -}}
{{- toYaml $sc -}}
{{- end -}}

{{/* "true" when security contexts are adapted for OpenShift. Usage: include "langflow-common.openshift.adapting" $ */}}
{{- define "langflow-common.openshift.adapting" -}}
{{- $mode := ((((.Values.global).compatibility).openshift).adaptSecurityContext) | default "auto" -}}
{{- if not (has $mode (list "auto" "force" "disabled")) -}}
{{- fail (printf "global.compatibility.openshift.adaptSecurityContext must be auto, force or disabled, got %q" $mode) -}}
{{- end -}}
{{- or (eq $mode "force") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "security.openshift.io/v1")) -}}
{{- end -}}

{{/* Usage: include "langflow-common.containerSecurityContext" (dict "context" $ "override" .Values.x.containerSecurityContext) */}}
{{- define "langflow-common.containerSecurityContext" -}}
{{- $ctx := .context | default . -}}
{{- $override := .override | default ($ctx.Values.containerSecurityContext | default dict) -}}
{{- $defaults := dict "allowPrivilegeEscalation" false "readOnlyRootFilesystem" true "runAsNonRoot" true "privileged" false "capabilities" (dict "drop" (list "ALL")) "seccompProfile" (dict "type" "RuntimeDefault") -}}
{{- include "langflow-common.openshift.adapt" (dict "context" $ctx "securityContext" (merge (deepCopy $override) $defaults)) -}}
{{- end -}}
