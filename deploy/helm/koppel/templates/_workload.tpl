{{/*
One koppel service process kind: its Deployment, Service, PodDisruptionBudget, ServiceMonitor and
NetworkPolicy. Every service has the ops server on 9090 (/metrics, /healthz, /readyz).

Takes a dict:
  root       the chart's root context ($)
  component  the service: gateway, scheduler, mapping, relation, ...
  shard      the shard of a worker Deployment, "" for the others
  values     the service's values (image, replicas, env, resources, pdb)
  env        the env the chart sets for it, as a YAML list (beside the log level and ops address)
  ports      extra ports: list of (dict "name" "http" "port" 8080 "servicePort" 80)
  autoscaled whether KEDA owns the replica count
  ingress    NetworkPolicy ingress rules beside the metrics scrape, as a YAML list
  egress     NetworkPolicy egress rules, as a YAML list
  volumes    pod volumes and the container's mounts, as YAML {volumes: [...], mounts: [...]}
*/}}
{{- define "koppel.workload" -}}
{{- $root := .root -}}
{{- $nameArgs := dict "root" $root "component" .component "shard" .shard -}}
{{- $name := include "koppel.componentName" $nameArgs -}}
{{- $v := .values -}}
{{- $env := list (dict "name" "KOPPEL_LOG_LEVEL" "value" (toString $root.Values.logLevel)) (dict "name" "KOPPEL_OPS_ADDR" "value" ":9090") -}}
{{- $env = concat $env (.env | default "[]" | fromYamlArray) -}}
{{- $names := list -}}
{{- range $env }}{{ $names = append $names .name }}{{ end -}}
{{- range $k, $val := $v.env | default dict -}}
{{- if has $k $names -}}
{{- fail (printf "%s.env.%s: the chart sets this variable itself (see values.yaml)" $.component $k) -}}
{{- end -}}
{{- if kindIs "map" $val -}}
{{- fail (printf "%s.env.%s: want a plain value; secrets come from existing Secrets (values: secrets, *.urlSecret)" $.component $k) -}}
{{- end -}}
{{- $env = append $env (dict "name" $k "value" (toString $val)) -}}
{{- end -}}
{{- $vol := (.volumes | default "volumes: []\nmounts: []") | fromYaml -}}
{{- $serviceType := "ClusterIP" -}}
{{- with $v.service }}{{ $serviceType = .type | default "ClusterIP" }}{{ end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "koppel.labels" $nameArgs | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "koppel.selectorLabels" $nameArgs | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "koppel.selectorLabels" $nameArgs | nindent 8 }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with $root.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "koppel.serviceAccountName" $root }}
      # koppel never talks to the Kubernetes API.
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.podSecurityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "koppel.image" (dict "root" $root "image" $v.image "component" .component) | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          {{- with $root.Values.securityContext }}
          securityContext:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          env:
            {{- toYaml $env | nindent 12 }}
          {{- with $vol.mounts }}
          volumeMounts:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
            - name: ops
              containerPort: 9090
              protocol: TCP
          livenessProbe:
            httpGet:
              path: /healthz
              port: ops
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: ops
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- required (printf "%s.resources is required" .component) $v.resources | toYaml | nindent 12 }}
      {{- with $vol.volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "koppel.labels" $nameArgs | nindent 4 }}
spec:
  type: {{ $serviceType }}
  selector:
    {{- include "koppel.selectorLabels" $nameArgs | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .servicePort | default .port }}
      targetPort: {{ .name }}
      protocol: TCP
    {{- end }}
    - name: ops
      port: 9090
      targetPort: ops
      protocol: TCP
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "koppel.labels" $nameArgs | nindent 4 }}
spec:
  {{- if hasKey ($v.pdb | default dict) "minAvailable" }}
  minAvailable: {{ $v.pdb.minAvailable }}
  {{- else }}
  maxUnavailable: {{ ($v.pdb | default dict).maxUnavailable | default 1 }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "koppel.selectorLabels" $nameArgs | nindent 6 }}
{{- if $root.Values.metrics.serviceMonitor.enabled }}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ $name }}
  labels:
    {{- include "koppel.labels" $nameArgs | nindent 4 }}
    {{- with $root.Values.metrics.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "koppel.selectorLabels" $nameArgs | nindent 6 }}
  endpoints:
    - port: ops
      path: /metrics
      interval: {{ $root.Values.metrics.serviceMonitor.interval }}
      scrapeTimeout: {{ $root.Values.metrics.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- if $root.Values.networkPolicy.enabled }}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  labels:
    {{- include "koppel.labels" $nameArgs | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "koppel.selectorLabels" $nameArgs | nindent 6 }}
  policyTypes: [Ingress, Egress]
  ingress:
    {{- with .ingress }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- include "koppel.ingressMetrics" $root | nindent 4 }}
  egress:
    {{- .egress | nindent 4 }}
{{- end }}
{{- end -}}
