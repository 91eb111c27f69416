{{/*
Resources. Every container states requests and limits: a value with neither fails the render, so no
workload is scheduled best-effort by accident.
Usage: include "langflow-common.resources" (dict "resources" .Values.resources "name" "resources")
*/}}
{{- define "langflow-common.resources" -}}
{{- $r := .resources | default dict -}}
{{- if not (and $r.requests $r.limits) -}}
{{- fail (printf "%s: both requests and limits are required" (.name | default "resources")) -}}
{{- end -}}
{{- toYaml $r -}}
{{- end -}}
