{{/* Names and labels shared by every object of the release. */}}

{{- define "luach.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "luach.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "luach.labels" -}}
{{ include "luach.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "luach.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "luach.claim" -}}
{{ .Values.persistence.existingClaim | default (printf "%s-data" (include "luach.fullname" .)) }}
{{- end -}}

{{/* The environment every luach-server container gets: secrets by reference only. */}}
{{- define "luach.env" -}}
{{- $secret := required "secrets.existingSecret: name the Secret holding the store URL, Redis URL and keys" .Values.secrets.existingSecret -}}
- name: LUACH_CONFIG
  value: /etc/luach/luach-server.toml
- name: LUACH_STORE__URL
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ .Values.secrets.keys.storeUrl }}}
- name: LUACH_REDIS
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ .Values.secrets.keys.redisUrl }}}
- name: LUACH_AUTH__JWT_SECRET
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ .Values.secrets.keys.jwtSecret }}}
- name: LUACH_AUDIT__CHAIN_KEY
  valueFrom:
    secretKeyRef: {name: {{ $secret }}, key: {{ .Values.secrets.keys.chainKey }}}
{{- range .Values.extraEnv }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- end -}}
