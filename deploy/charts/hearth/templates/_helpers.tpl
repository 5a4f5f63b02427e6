{{/* The CSI driver name: fixed in the binary (csi/src/lib.rs DRIVER_NAME), so not a value. */}}
{{- define "hearth.driverName" -}}csi.hearth.dev{{- end -}}

{{- define "hearth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "hearth.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "hearth.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "hearth.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include "hearth.selectorLabels" (list . "node") */}}
{{- define "hearth.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "hearth.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "hearth.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "hearth.coordinatorTLSSecret" -}}
{{- default (printf "%s-coordinator-tls" (include "hearth.fullname" .)) .Values.tls.coordinatorSecret -}}
{{- end -}}

{{- define "hearth.nodeTLSSecret" -}}
{{- default (printf "%s-node-tls" (include "hearth.fullname" .)) .Values.tls.nodeSecret -}}
{{- end -}}

{{/* The agent API URL the node agents dial; the coordinator's certificate must name this host. */}}
{{- define "hearth.coordinatorHost" -}}
{{- printf "%s-coordinator.%s.svc" (include "hearth.fullname" .) .Release.Namespace -}}
{{- end -}}

{{/* Backend flags shared by both roles. */}}
{{- define "hearth.backendArgs" -}}
- --backend={{ .Values.backend.type }}
{{- if eq .Values.backend.type "linstor" }}
- --linstor-url={{ required "backend.linstor.url is required with backend.type=linstor" .Values.backend.linstor.url }}
{{- if .Values.backend.linstor.clientSecret }}
- --linstor-ca-file=/etc/hearth/linstor-tls/ca.crt
- --linstor-cert-file=/etc/hearth/linstor-tls/tls.crt
- --linstor-key-file=/etc/hearth/linstor-tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{- define "hearth.linstorVolumeMount" -}}
{{- if and (eq .Values.backend.type "linstor") .Values.backend.linstor.clientSecret }}
- name: linstor-tls
  mountPath: /etc/hearth/linstor-tls
  readOnly: true
{{- end }}
{{- end -}}

{{- define "hearth.linstorVolume" -}}
{{- if and (eq .Values.backend.type "linstor") .Values.backend.linstor.clientSecret }}
- name: linstor-tls
  secret:
    secretName: {{ .Values.backend.linstor.clientSecret }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/* What every CSI sidecar of the coordinator shares: the socket, the downward API for leader
     election and capacity owner references, and a locked-down security context. */}}
{{- define "hearth.sidecarCommon" -}}
imagePullPolicy: {{ .Values.sidecars.pullPolicy }}
env:
  - name: NAMESPACE
    valueFrom:
      fieldRef:
        fieldPath: metadata.namespace
  - name: POD_NAME
    valueFrom:
      fieldRef:
        fieldPath: metadata.name
securityContext:
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities:
    drop: [ALL]
resources:
  {{- toYaml .Values.sidecars.resources | nindent 2 }}
volumeMounts:
  - name: socket-dir
    mountPath: /csi
{{- end -}}
