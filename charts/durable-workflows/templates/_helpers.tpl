{{/* Chart name, truncated to 63 characters. */}}
{{- define "durable-workflows.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release plus chart name, unless the release name already holds it. */}}
{{- define "durable-workflows.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "durable-workflows.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "durable-workflows.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: durable-workflows
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "operator"). */}}
{{- define "durable-workflows.selectorLabels" -}}
app.kubernetes.io/name: {{ include "durable-workflows.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "durable-workflows.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "durable-workflows.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the Redis URL, and its key. */}}
{{- define "durable-workflows.redisSecretName" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecret }}{{ else }}{{ include "durable-workflows.fullname" . }}-redis-url{{ end }}
{{- end }}
{{- define "durable-workflows.redisSecretKey" -}}
{{- if .Values.redis.existingSecret }}{{ .Values.redis.existingSecretKey }}{{ else }}redis-url{{ end }}
{{- end }}

{{/* The Redis URL the chart writes into its Secret. */}}
{{- define "durable-workflows.redisUrl" -}}
{{- $scheme := ternary "rediss" "redis" .Values.redis.tls.enabled }}
{{- $auth := ternary (printf ":%s@" (.Values.redis.password | urlquery)) "" (ne .Values.redis.password "") }}
{{- $url := "" }}
{{- if .Values.redis.enabled }}
{{- $url = printf "%s://%s%s-redis:6379/0" $scheme $auth (include "durable-workflows.fullname" .) }}
{{- else }}
{{- $url = required "set redis.url, redis.existingSecret, or redis.enabled=true" .Values.redis.url }}
{{- if and $auth (not (contains "@" $url)) }}
{{- $url = regexReplaceAll "^(rediss?://)" $url (printf "${1}%s" $auth) }}
{{- end }}
{{- end }}
{{- if .Values.redis.tls.caSecret }}
{{- $url = printf "%s%sssl_ca_certs=/etc/durable/redis-ca/ca.crt" $url (ternary "&" "?" (contains "?" $url)) }}
{{- end }}
{{- $url }}
{{- end }}

{{/* Image reference: include with (dict "image" .Values.operator.image "ctx" $). */}}
{{- define "durable-workflows.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* The restricted security context every container of the chart runs with. */}}
{{- define "durable-workflows.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "durable-workflows.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Volume and mount of the Redis CA bundle, when one is given. */}}
{{- define "durable-workflows.redisCaVolume" -}}
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  secret:
    secretName: {{ .Values.redis.tls.caSecret }}
{{- end }}
{{- end }}
{{- define "durable-workflows.redisCaMount" -}}
{{- if .Values.redis.tls.caSecret }}
- name: redis-ca
  mountPath: /etc/durable/redis-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* Rolls the pods when the chart-made Redis URL changes. */}}
{{- define "durable-workflows.redisChecksum" -}}
{{- if .Values.redis.existingSecret }}{{ printf "secret:%s/%s" .Values.redis.existingSecret .Values.redis.existingSecretKey | sha256sum | trunc 16 }}
{{- else }}{{ include "durable-workflows.redisUrl" . | sha256sum | trunc 16 }}{{ end }}
{{- end }}
