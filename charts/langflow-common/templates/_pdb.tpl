{{/*
PodDisruptionBudget for a component, from {pdb: {enabled, minAvailable | maxUnavailable}}. With "minPods" (the
fewest pods the workload runs while it runs: its autoscaler's minimum, at least 1) a budget that would allow no
disruption there - so every node drain blocks - fails the render naming the key.
Usage: include "langflow-common.pdb" (dict "context" $ "component" "ide" "minPods" 2)
*/}}
{{- define "langflow-common.pdb" -}}
{{- $pdb := .context.Values.pdb | default dict -}}
{{- if and $pdb.enabled (hasKey . "minPods") (not $pdb.maxUnavailable) }}
{{- $pods := int .minPods -}}
{{- $min := toString ($pdb.minAvailable | default "50%") -}}
{{- $need := ternary (div (add (mul (int (trimSuffix "%" $min)) $pods) 99) 100) (int $min) (hasSuffix "%" $min) -}}
{{- if lt (sub $pods $need) 1 }}
{{- fail (printf "VALUES VALIDATION:\n%s.pdb.minAvailable=%s keeps all %d pod(s) of the workload's minimum: no disruption is allowed and every node drain blocks; set %s.pdb.maxUnavailable (e.g. 1) or raise the minimum" .component $min $pods .component) }}
{{- end }}
{{- end }}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  {{- include "langflow-common.metadata" (dict "context" .context "name" .name "component" .component) | nindent 2 }}
spec:
  {{- if $pdb.maxUnavailable }}
  maxUnavailable: {{ $pdb.maxUnavailable }}
  {{- else }}
  minAvailable: {{ $pdb.minAvailable | default "50%" }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "langflow-common.selectorLabels" . | nindent 6 }}
{{- end }}
{{- end -}}
