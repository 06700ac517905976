{{/*
RBAC rules of the cluster agent: exactly causeway_agent::RBAC_RULES
(the calls its controllers make); e2e/tests/charts.rs compares them.
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
