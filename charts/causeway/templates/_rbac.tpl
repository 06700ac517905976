{{/*
RBAC rules of the cluster agent: exactly the requests it makes.
agent/tests/kube.rs (chart_rbac_is_exactly_what_the_agent_requests) runs the
whole agent against the strict fake API server and compares the recorded
(group, resource, verb) of its requests with these rules both ways;
s12_kubernetes_export checks the real gateways' requests are granted;
e2e/tests/charts.rs checks the rendered ClusterRole.
*/}}
{{- define "causeway.agent.rbacRules" -}}
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["serviceexports"]
  verbs: ["list", "watch"]
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["serviceexports/status"]
  verbs: ["patch"]
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["serviceimports"]
  verbs: ["list", "create", "update", "delete"]
- apiGroups: ["multicluster.x-k8s.io"]
  resources: ["serviceimports/status"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["list", "watch", "create", "update", "delete"]
- apiGroups: ["about.k8s.io"]
  resources: ["clusterproperties"]
  verbs: ["get"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
