{{/*
Image references. An image value is {registry, repository, tag, digest, pullPolicy}; global.imageRegistry
overrides the registry release-wide. A tag is required and "latest" is refused (reproducible installs);
a digest, when set, pins the image and is appended as "@sha256:...".
Usage: include "langflow-common.image" (dict "image" .Values.image "global" .Values.global "name" "image")
*/}}
{{- define "langflow-common.image" -}}
{{- $img := .image -}}
{{- $global := .global | default dict -}}
{{- $what := .name | default "image" -}}
{{- if not $img.repository -}}{{- fail (printf "%s.repository is required" $what) -}}{{- end -}}
{{- $tag := toString ($img.tag | default "") -}}
{{- if and (not $tag) (not $img.digest) -}}{{- fail (printf "%s.tag is required (or %s.digest): unpinned images are refused" $what $what) -}}{{- end -}}
{{- if eq $tag "latest" -}}{{- fail (printf "%s.tag must not be \"latest\": pin a version" $what) -}}{{- end -}}
{{- $registry := $global.imageRegistry | default $img.registry -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" $registry $img.repository -}}{{- end -}}
{{- if $tag -}}{{- $ref = printf "%s:%s" $ref $tag -}}{{- end -}}
{{- if $img.digest -}}{{- $ref = printf "%s@%s" $ref $img.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* imagePullSecrets from global.imagePullSecrets and the chart's own imagePullSecrets (names or {name}). */}}
{{- define "langflow-common.imagePullSecrets" -}}
{{- $secrets := list -}}
{{- range (concat ((.Values.global).imagePullSecrets | default list) (.Values.imagePullSecrets | default list)) -}}
{{- if kindIs "map" . -}}{{- $secrets = append $secrets .name -}}{{- else -}}{{- $secrets = append $secrets . -}}{{- end -}}
{{- end -}}
{{- with (uniq $secrets) }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end -}}
{{- end -}}
