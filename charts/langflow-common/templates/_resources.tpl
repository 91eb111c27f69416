{{/*
Resources. Every container states requests and limits: a value with neither fails the render, so no
workload is scheduled best-effort by accident. Both also state ephemeral-storage: the kubelet then bounds each
container's logs and scratch volumes, and schedules the pod where that much disk is free.
Usage: include "langflow-common.resources" (dict "resources" .Values.resources "name" "resources")
*/}}
{{- define "langflow-common.resources" -}}
{{- $r := .resources | default dict -}}
{{- $name := .name | default "resources" -}}
{{- if not (and $r.requests $r.limits) -}}
{{- fail (printf "%s: both requests and limits are required" $name) -}}
{{- end -}}
{{- $missing := list -}}
{{- range $part := list "requests" "limits" -}}
{{- if not (hasKey (index $r $part) "ephemeral-storage") -}}
{{- $missing = append $missing (printf "%s.%s.ephemeral-storage" $name $part) -}}
{{- end -}}
{{- end -}}
{{- if $missing -}}
{{- fail (printf "VALUES VALIDATION:\n%s: required (the disk a container's logs and emptyDir volumes may use; the limit covers its volumes' sizeLimits)" (join ", " $missing)) -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}
