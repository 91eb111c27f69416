{{/*
Custom Langflow components (LANGFLOW_COMPONENTS_PATH) of the IDE and the runtime, from `.Values.components`:
Python files of Langflow components, grouped in category folders (a category is a group of Langflow's
component sidebar). One source at most:
  files         inline file name -> source, in the chart's ConfigMap `<fullname>-components`, as folder `category`;
  configMap     an existing ConfigMap whose keys are the file names, as folder `category`;
  existingClaim an existing PVC holding category folders, mounted read-only;
  image         an image holding category folders at `image.path`, copied by the `copy-components`
                initContainer (its own `cp`) into an emptyDir.
All of them end up under `mountPath`, which LANGFLOW_COMPONENTS_PATH names.
*/}}

{{/* The source in use: "" | files | configMap | existingClaim | image; fails when more than one is set.
Usage: include "langflow-common.components.source" (dict "context" $) */}}
{{- define "langflow-common.components.source" -}}
{{- $c := .context.Values.components -}}
{{- $set := list -}}
{{- if $c.files }}{{ $set = append $set "files" }}{{ end -}}
{{- if $c.configMap }}{{ $set = append $set "configMap" }}{{ end -}}
{{- if $c.existingClaim }}{{ $set = append $set "existingClaim" }}{{ end -}}
{{- if $c.image.repository }}{{ $set = append $set "image" }}{{ end -}}
{{- if gt (len $set) 1 -}}
{{- $key := printf "%s.components" (trimPrefix "langflow-" .context.Chart.Name) -}}
{{- fail (printf "%s: set one source of custom components, not %s (%s.%s)" $key (join " and " $set) $key (join (printf ", %s." $key) $set)) -}}
{{- end -}}
{{- first $set | default "" -}}
{{- end -}}

{{/* LANGFLOW_COMPONENTS_PATH (an env entry) when a source is set.
Usage: include "langflow-common.components.env" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.components.env" -}}
{{- if include "langflow-common.components.source" . }}
- name: LANGFLOW_COMPONENTS_PATH
  value: {{ .context.Values.components.mountPath | quote }}
{{- end }}
{{- end -}}

{{/* The mount of the components (a volumeMounts entry), read-only.
Usage: include "langflow-common.components.volumeMount" (dict "context" $) | nindent 12 */}}
{{- define "langflow-common.components.volumeMount" -}}
{{- $source := include "langflow-common.components.source" . -}}
{{- $c := .context.Values.components -}}
{{- if $source }}
- name: components
  mountPath: {{ if has $source (list "files" "configMap") }}{{ printf "%s/%s" (trimSuffix "/" $c.mountPath) $c.category }}{{ else }}{{ $c.mountPath }}{{ end }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* The components volume (a volumes entry).
Usage: include "langflow-common.components.volume" (dict "context" $) | nindent 8 */}}
{{- define "langflow-common.components.volume" -}}
{{- $source := include "langflow-common.components.source" . -}}
{{- $c := .context.Values.components -}}
{{- if $source }}
- name: components
  {{- if eq $source "files" }}
  configMap:
    name: {{ include "langflow-common.suffixed" (dict "context" .context "suffix" "components") }}
    defaultMode: 0444
  {{- else if eq $source "configMap" }}
  configMap:
    name: {{ tpl $c.configMap .context }}
    defaultMode: 0444
  {{- else if eq $source "existingClaim" }}
  persistentVolumeClaim:
    claimName: {{ tpl $c.existingClaim .context }}
    readOnly: true
  {{- else }}
  emptyDir:
    sizeLimit: {{ $c.image.sizeLimit }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* The initContainer that copies the components out of components.image (an initContainers entry).
Usage: include "langflow-common.components.initContainer" (dict "context" $ "name" "runtime") | nindent 8 */}}
{{- define "langflow-common.components.initContainer" -}}
{{- if eq (include "langflow-common.components.source" .) "image" }}
{{- $c := .context.Values.components }}
- name: copy-components
  image: {{ include "langflow-common.image" (dict "image" $c.image "global" .context.Values.global "name" (printf "%s.components.image" .name)) }}
  imagePullPolicy: {{ $c.image.pullPolicy }}
  securityContext:
    {{- include "langflow-common.containerSecurityContext" .context | nindent 4 }}
  command: [cp, -R, {{ printf "%s/." (trimSuffix "/" $c.image.path) | quote }}, /components]
  resources:
    {{- include "langflow-common.resources" (dict "resources" $c.image.resources "name" (printf "%s.components.image.resources" .name)) | nindent 4 }}
  volumeMounts:
    - name: components
      mountPath: /components
{{- end }}
{{- end -}}

{{/* The chart's ConfigMap of inline components (components.files), as a whole document.
Usage: include "langflow-common.components.configMap" (dict "context" $ "component" "ide") */}}
{{- define "langflow-common.components.configMap" -}}
{{- if eq (include "langflow-common.components.source" .) "files" }}
apiVersion: v1
kind: ConfigMap
metadata:
  {{- include "langflow-common.metadata" (dict "context" .context "component" .component "name" (include "langflow-common.suffixed" (dict "context" .context "suffix" "components"))) | nindent 2 }}
data:
  {{- $component := .component }}
  {{- range $file, $source := .context.Values.components.files }}
  {{- if not (regexMatch "^[A-Za-z_][A-Za-z0-9_]*\\.py$" $file) }}
  {{- fail (printf "%s.components.files: %q is not a Python module file name (letters, digits, _ and .py)" $component $file) }}
  {{- end }}
  {{ $file }}: {{ $source | quote }}
  {{- end }}
{{- end }}
{{- end -}}
