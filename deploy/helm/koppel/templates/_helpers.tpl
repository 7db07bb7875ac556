{{/* Names and labels. */}}

{{- define "koppel.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's name prefix: the release name when it contains the chart name, else both. */}}
{{- define "koppel.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The name of a component's objects: <fullname>-<component>[-<shard>]. It is never truncated, since
two shards whose names were cut to the same prefix would share objects: a name that does not fit
a DNS label fails the render instead. Takes (dict "root" $ "component" "relation" "shard" "big").
*/}}
{{- define "koppel.componentName" -}}
{{- $name := printf "%s-%s" (include "koppel.fullname" .root) .component -}}
{{- if .shard -}}{{- $name = printf "%s-%s" $name .shard -}}{{- end -}}
{{- if gt (len $name) 63 -}}
{{- fail (printf "object name %q is longer than 63 characters: use a shorter release name, fullnameOverride or shard name" $name) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{- define "koppel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "koppel.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the pods of one component (and shard). Takes the componentName dict. */}}
{{- define "koppel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "koppel.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .shard }}
koppel.io/shard: {{ .shard }}
{{- end }}
{{- end -}}

{{/* Labels of every pod of the release, whatever its component. */}}
{{- define "koppel.releaseSelectorLabels" -}}
app.kubernetes.io/name: {{ include "koppel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "koppel.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "koppel.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: koppel
{{- end -}}

{{/*
The image of a service: repository@digest when the service has a digest (the tag is then only
a label), else repository:tag; image.requireDigest refuses the latter. Takes
(dict "root" $ "image" .Values.gateway.image "component" "gateway").
*/}}
{{- define "koppel.image" -}}
{{- $repo := required "image.repository of every service is required" .image.repository -}}
{{- with .image.digest -}}
{{- printf "%s@%s" $repo . -}}
{{- else -}}
{{- if .root.Values.image.requireDigest -}}
{{- fail (printf "%s.image.digest: image.requireDigest is on and %s has no digest (README: Pinning images)" .component .component) -}}
{{- end -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end -}}
{{- end -}}

{{/* Shards. */}}

{{/* Shard names and tenant IDs: the tenant ID rule of the services (pkg/bus ValidTenantID). */}}
{{- define "koppel.idPattern" -}}^[a-z0-9][a-z0-9-]{0,39}${{- end -}}

{{/*
The shards, validated, as YAML {shards: [{name, tenants, autoscaling}]}: the default shard first,
then the named ones in the order of the values. Fails on a bad name or tenant ID, a duplicate
shard or tenant, a shard named "default" and an unknown key.
*/}}
{{- define "koppel.shards" -}}
{{- $pattern := include "koppel.idPattern" . -}}
{{- $out := list (dict "name" "default" "tenants" (list) "autoscaling" (dict)) -}}
{{- $seenShards := dict -}}
{{- $tenantShard := dict -}}
{{- range $i, $s := .Values.shards | default list -}}
{{- if not (kindIs "map" $s) -}}
{{- fail (printf "shards[%d]: want {name: ..., tenants: [...]}, got %v" $i $s) -}}
{{- end -}}
{{- range $k, $_ := $s -}}
{{- if not (has $k (list "name" "tenants" "autoscaling")) -}}
{{- fail (printf "shards[%d]: unknown key %q (want name, tenants, autoscaling)" $i $k) -}}
{{- end -}}
{{- end -}}
{{- $name := toString ($s.name | default "") -}}
{{- if not (regexMatch $pattern $name) -}}
{{- fail (printf "shards[%d]: shard name %q: want lower-case letters, digits and dashes, at most 40, matching %s" $i $name $pattern) -}}
{{- end -}}
{{- if eq $name "default" -}}
{{- fail (printf "shards[%d]: the shard \"default\" takes every tenant not named and cannot be listed" $i) -}}
{{- end -}}
{{- if hasKey $seenShards $name -}}
{{- fail (printf "shards[%d]: shard %q is listed twice" $i $name) -}}
{{- end -}}
{{- $_ := set $seenShards $name true -}}
{{- if not (kindIs "slice" ($s.tenants | default list)) -}}
{{- fail (printf "shard %q: tenants must be a list of tenant IDs" $name) -}}
{{- end -}}
{{- $tenants := list -}}
{{- range $t := $s.tenants | default list -}}
{{- $t = toString $t -}}
{{- if not (regexMatch $pattern $t) -}}
{{- fail (printf "shard %q: tenant ID %q: want lower-case letters, digits and dashes, at most 40, matching %s" $name $t $pattern) -}}
{{- end -}}
{{- if hasKey $tenantShard $t -}}
{{- fail (printf "tenant %q is in shard %q and in shard %q: a tenant belongs to one shard" $t (get $tenantShard $t) $name) -}}
{{- end -}}
{{- $_ := set $tenantShard $t $name -}}
{{- $tenants = append $tenants $t -}}
{{- end -}}
{{- $as := $s.autoscaling | default dict -}}
{{- range $k, $_ := $as -}}
{{- if not (hasKey $.Values.autoscaling $k) -}}
{{- fail (printf "shard %q: unknown autoscaling key %q" $name $k) -}}
{{- end -}}
{{- end -}}
{{- $out = append $out (dict "name" $name "tenants" $tenants "autoscaling" $as) -}}
{{- end -}}
{{- toYaml (dict "shards" $out) -}}
{{- end -}}

{{/*
KOPPEL_SHARDS: every named shard as name=tenant,tenant, separated by ";" (pkg/bus ParseShards).
The same on every service, so that all agree on where a tenant's messages go.
*/}}
{{- define "koppel.shardsEnv" -}}
{{- $parts := list -}}
{{- range (include "koppel.shards" . | fromYaml).shards -}}
{{- if ne .name "default" -}}
{{- $parts = append $parts (printf "%s=%s" .name (join "," .tenants)) -}}
{{- end -}}
{{- end -}}
{{- join ";" $parts -}}
{{- end -}}

{{/*
The durable JetStream consumers each worker service consumes, by base name, with their stream
(pkg/bus topology.go). The workers of a shard consume these under their shard's names.
*/}}
{{- define "koppel.workerConsumers" -}}
relation:
  - {base: relation-evt, stream: TRIBE_EVENTS}
  - {base: relation-cmd, stream: SYNC_COMMANDS}
product:
  - {base: product-cmd, stream: SYNC_COMMANDS}
invoice:
  - {base: invoice-evt, stream: TRIBE_EVENTS}
payment:
  - {base: payment-cmd, stream: SYNC_COMMANDS}
{{- end -}}

{{/*
The name rule of shard consumers (pkg/bus ShardConsumer): the base name in the default shard
("relation-evt"), the base name and the shard in a named one ("relation-evt-big").
Takes (dict "base" "relation-evt" "shard" "big").
*/}}
{{- define "koppel.consumerName" -}}
{{- if or (not .shard) (eq .shard "default") -}}
{{- .base -}}
{{- else -}}
{{- printf "%s-%s" .base .shard -}}
{{- end -}}
{{- end -}}

{{/* Environment. */}}

{{/* An env var from a Secret reference, failing when the reference is incomplete. */}}
{{- define "koppel.secretEnv" -}}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s.name: the Secret that holds %s" .path .env) .ref.name | quote }}
      key: {{ required (printf "%s.key: the key of %s in its Secret" .path .env) .ref.key | quote }}
{{- end -}}

{{/*
An env var that is a plain URL or a Secret reference (URLs with credentials belong in Secrets).
Takes (dict "env" "KOPPEL_NATS_URL" "path" "nats" "v" .Values.nats).
*/}}
{{- define "koppel.urlEnv" -}}
{{- if .v.urlSecret.name -}}
{{- include "koppel.secretEnv" (dict "env" .env "path" (printf "%s.urlSecret" .path) "ref" .v.urlSecret) -}}
{{- else -}}
{{- $url := required (printf "%s.url or %s.urlSecret is required" .path .path) .v.url -}}
{{- if contains "@" $url -}}
{{- fail (printf "%s.url carries credentials: put it in a Secret and name it in %s.urlSecret" .path .path) -}}
{{- end -}}
- name: {{ .env }}
  value: {{ $url | quote }}
{{- end -}}
{{- end -}}

{{/* The env of every service that uses the bus: gateway, admin, scheduler and the workers. */}}
{{- define "koppel.busEnv" -}}
{{ include "koppel.urlEnv" (dict "env" "KOPPEL_NATS_URL" "path" "nats" "v" .Values.nats) }}
- name: KOPPEL_MAPPING_ADDR
  value: {{ printf "%s:9000" (include "koppel.componentName" (dict "root" . "component" "mapping")) | quote }}
- name: KOPPEL_STREAM_REPLICAS
  value: {{ .Values.nats.streamReplicas | toString | quote }}
- name: KOPPEL_SHARDS
  value: {{ include "koppel.shardsEnv" . | quote }}
- name: KOPPEL_STREAM_MAX_BYTES
  value: {{ .Values.nats.streamMaxBytes | int64 | toString | quote }}
- name: KOPPEL_EVENT_DEDUP_WINDOW
  value: {{ .Values.nats.eventDedupWindow | quote }}
{{- end -}}

{{/* Caller authentication to the mapping service. */}}

{{/* The mount point of the mapping TLS Secret in every pod that has one. */}}
{{- define "koppel.mappingTLSDir" -}}/var/run/koppel/mapping-tls{{- end -}}

{{/* The Secret of a component's mapping TLS certificate: <fullname>-<component>-tls for the
mapping service's own, <fullname>-<component>-mapping-tls for a caller's. Takes the root and the
component. */}}
{{- define "koppel.mappingTLSSecret" -}}
{{- if eq .component "mapping" -}}
{{- printf "%s-mapping-tls" (include "koppel.fullname" .root) -}}
{{- else -}}
{{- printf "%s-%s-mapping-tls" (include "koppel.fullname" .root) .component -}}
{{- end -}}
{{- end -}}

{{/* Fails unless callers authenticate to the mapping service one way or another. */}}
{{- define "koppel.mappingAuthCheck" -}}
{{- $a := .Values.mappingAuth -}}
{{- if not (or $a.tokens.enabled $a.tls.enabled) -}}
{{- fail "mappingAuth: turn on tokens, tls or both: the mapping API hands out the tenants' secrets" -}}
{{- end -}}
{{- if and $a.tls.enabled $a.tls.certManager.enabled (not $a.tls.certManager.issuerRef.name) -}}
{{- fail "mappingAuth.tls.certManager.issuerRef.name: the Issuer that signs the mapping certificates" -}}
{{- end -}}
{{- end -}}

{{/* A caller's env for the mapping service: its token, its TLS files. Takes (dict "root" $
"component" "relation"). */}}
{{- define "koppel.mappingClientEnv" -}}
{{- include "koppel.mappingAuthCheck" .root -}}
{{- $a := .root.Values.mappingAuth -}}
{{- if $a.tokens.enabled }}
{{ include "koppel.secretEnv" (dict "env" "KOPPEL_MAPPING_TOKEN" "path" "mappingAuth.tokens.secret" "ref" (dict "name" $a.tokens.secret "key" .component)) }}
{{- end }}
{{- if $a.tls.enabled }}
{{- $dir := include "koppel.mappingTLSDir" . }}
- name: KOPPEL_MAPPING_TLS_CA
  value: {{ printf "%s/ca.crt" $dir | quote }}
- name: KOPPEL_MAPPING_TLS_CERT
  value: {{ printf "%s/tls.crt" $dir | quote }}
- name: KOPPEL_MAPPING_TLS_KEY
  value: {{ printf "%s/tls.key" $dir | quote }}
{{- end }}
{{- end -}}

{{/* The volume and mount of a component's mapping TLS Secret, as YAML lists {volumes: [...],
mounts: [...]}; empty lists without TLS. Takes (dict "root" $ "component" "relation"). */}}
{{- define "koppel.mappingTLSVolumes" -}}
{{- if .root.Values.mappingAuth.tls.enabled -}}
volumes:
  - name: mapping-tls
    secret:
      secretName: {{ include "koppel.mappingTLSSecret" . }}
mounts:
  - name: mapping-tls
    mountPath: {{ include "koppel.mappingTLSDir" . }}
    readOnly: true
{{- else -}}
volumes: []
mounts: []
{{- end -}}
{{- end -}}

{{/* Where the admin service and the workers may send tenants' credentials. */}}
{{- define "koppel.outboundEnv" -}}
- name: KOPPEL_OUTBOUND_HOSTS
  value: {{ join "," (required "outbound.hosts: the hosts tenants' base URLs may name" .Values.outbound.hosts) | quote }}
{{- with .Values.outbound.networks }}
- name: KOPPEL_OUTBOUND_NETWORKS
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}

{{/*
KOPPEL_PUBLIC_URL, where Tribe reaches the gateway (the admin service registers the webhooks
there): gateway.publicURL, else https://<first host> of the gateway's Ingress; empty without
either (the service's default then, fit for a port-forward only).
*/}}
{{- define "koppel.publicURL" -}}
{{- $v := .Values.gateway -}}
{{- if $v.publicURL -}}
{{- $v.publicURL -}}
{{- else if and $v.ingress.enabled $v.ingress.hosts -}}
{{- printf "https://%s" (first $v.ingress.hosts) -}}
{{- end -}}
{{- end -}}

{{/* Network policy rules. */}}

{{- define "koppel.ingressMetrics" -}}
- from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ required "metrics.prometheusNamespace is required" .Values.metrics.prometheusNamespace | quote }}
      {{- with .Values.metrics.prometheusPodLabels }}
      podSelector:
        matchLabels:
          {{- toYaml . | nindent 10 }}
      {{- end }}
  ports:
    - {port: 9090, protocol: TCP}
{{- end -}}

{{- define "koppel.egressDNS" -}}
- ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
  {{- with .Values.networkPolicy.dnsPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "koppel.egressNATS" -}}
- ports:
    - {port: {{ .Values.nats.port }}, protocol: TCP}
  {{- with .Values.nats.networkPolicyPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "koppel.egressMapping" -}}
- to:
    - podSelector:
        matchLabels:
          {{- include "koppel.selectorLabels" (dict "root" . "component" "mapping") | nindent 10 }}
  ports:
    - {port: 9000, protocol: TCP}
{{- end -}}

{{- define "koppel.egressInternet" -}}
- ports:
    - {port: 443, protocol: TCP}
  {{- with .Values.networkPolicy.internetPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
