{{/* Names, labels and the values derived from config that several templates share. */}}

{{- define "bridge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "bridge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "bridge.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "bridge.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels of every object; "component" tells the bridge from each consumer. */}}
{{- define "bridge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{ include "bridge.selectorLabels" . }}
{{- end -}}

{{- define "bridge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bridge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook-receiver
{{- end -}}

{{/* The management Service's name: the full name cut to leave room for the suffix, so the two never clash. */}}
{{- define "bridge.managementServiceName" -}}
{{- printf "%s-management" (include "bridge.fullname" . | trunc 52 | trimSuffix "-") -}}
{{- end -}}

{{/* Tells the management Service from the public one (both carry bridge.labels), for the ServiceMonitor. */}}
{{- define "bridge.managementServiceLabel" -}}
webhook-kafka-bridge/service: management
{{- end -}}

{{/* Selector labels of one consumer: (dict "root" $ "name" "billing"). */}}
{{- define "bridge.consumerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "bridge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: consumer-{{ .name }}
{{- end -}}

{{- define "bridge.consumerLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
{{ include "bridge.consumerSelectorLabels" . }}
{{- end -}}

{{- define "bridge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "bridge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "bridge.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The bridge's public port, from its own configuration (the bridge's default is 8000). */}}
{{- define "bridge.port" -}}
{{- (.Values.config.server | default dict).port | default 8000 | int -}}
{{- end -}}

{{/* The management port: required, since every probe and the scrape use it. */}}
{{- define "bridge.managementPort" -}}
{{- required "config.server.management_port must be set: the chart serves /healthz, /readyz and /metrics on it" (.Values.config.server | default dict).management_port | int -}}
{{- end -}}

{{/* preStop sleep + the bridge's shutdown budget (default 20 s) + a margin: README "Shutdown". */}}
{{- define "bridge.terminationGracePeriodSeconds" -}}
{{- $shutdown := (.Values.config.server | default dict).shutdown_timeout_seconds | default 20 -}}
{{- add .Values.preStopSleepSeconds (ceil $shutdown) .Values.terminationGraceMarginSeconds -}}
{{- end -}}

{{/* The ConfigMap's bridge.yaml, rendered once so its checksum and its content agree. */}}
{{- define "bridge.configYaml" -}}
{{ toYaml .Values.config }}
{{- end -}}

{{/* Where the bridge and every consumer read the configuration. */}}
{{- define "bridge.configPath" -}}/etc/bridge/bridge.yaml{{- end -}}

{{/* Secret env, the config, the Secret's files and /tmp: shared by the bridge and the consumers. */}}
{{- define "bridge.envFrom" -}}
{{- if and .Values.existingSecret .Values.secretEnv -}}
envFrom:
  - secretRef:
      name: {{ .Values.existingSecret }}
{{- end -}}
{{- end -}}

{{- define "bridge.volumeMounts" -}}
- name: config
  mountPath: /etc/bridge
  readOnly: true
{{- if and .Values.existingSecret .Values.secretMountPath }}
- name: secret
  mountPath: {{ .Values.secretMountPath }}
  readOnly: true
{{- end }}
- name: tmp
  mountPath: /tmp
{{- with .Values.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bridge.volumes" -}}
- name: config
  configMap:
    name: {{ include "bridge.fullname" . }}
    items:
      - key: bridge.yaml
        path: bridge.yaml
{{- if and .Values.existingSecret .Values.secretMountPath }}
# Mounted as a folder, not with subPath: Kubernetes then swaps in an updated Secret, and the bridge
# re-reads webhook secrets and the SASL password from it without a restart.
- name: secret
  secret:
    secretName: {{ .Values.existingSecret }}
    defaultMode: 0440
{{- end }}
# Writable scratch space under the read-only root filesystem.
- name: tmp
  emptyDir:
    sizeLimit: 16Mi
{{- with .Values.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "bridge.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
# The Secret's files are group-readable (defaultMode 0440) by this group.
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "bridge.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Egress rules shared by the bridge's and the consumers' NetworkPolicies. */}}
{{- define "bridge.egressRules" -}}
{{- $policy := .Values.networkPolicy -}}
- ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
  {{- with $policy.dns.to }}
  to: {{- toYaml . | nindent 4 }}
  {{- end }}
{{- range $name := list "kafka" "registry" }}
{{- $target := index $policy $name }}
- ports:
    {{- range $target.ports }}
    - {protocol: TCP, port: {{ . }}}
    {{- end }}
  {{- with $target.to }}
  to: {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- with $policy.extraEgress }}
{{ toYaml . }}
{{- end }}
{{- end -}}
