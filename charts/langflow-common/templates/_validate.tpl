{{/*
Cross-field checks the JSON schema cannot express. Each fails the render with a message that names the key.
*/}}

{{/* Usage: include "langflow-common.validate.range" (dict "min" .Values.autoscaling.minReplicas "max" .Values.autoscaling.maxReplicas "key" "autoscaling") */}}
{{- define "langflow-common.validate.range" -}}
{{- if gt (int .min) (int .max) -}}
{{- fail (printf "%s: minReplicas (%d) must not be greater than maxReplicas (%d)" .key (int .min) (int .max)) -}}
{{- end -}}
{{- end -}}

{{/* Usage: include "langflow-common.validate.required" (dict "value" .Values.x "key" "x.y" "why" "...") */}}
{{- define "langflow-common.validate.required" -}}
{{- if not .value -}}
{{- fail (printf "%s is required%s" .key (ternary (printf ": %s" .why) "" (not (empty .why)))) -}}
{{- end -}}
{{- end -}}
