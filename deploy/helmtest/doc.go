// Package helmtest checks the Helm chart in deploy/helm/koppel: it lints and renders the chart
// with helm (built from the Go module proxy), decodes every rendered manifest strictly into the
// Kubernetes API types, and checks what a platform team relies on: probes, resources,
// PodDisruptionBudgets, ServiceMonitors and NetworkPolicies for every service, no secret values
// in the manifests, each service's variables against what its binary says it reads
// (-config-vars), the admin API kept off the public edge (issue 11 item 7), per-tenant shards
// whose worker Deployments, KOPPEL_SHARDS and KEDA ScaledObjects agree with the consumers the
// services really create (pkg/bus), and the alert rules and dashboards shipped exactly as the
// files in the chart's files/ folder.
package helmtest
