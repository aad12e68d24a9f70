# Pinned versions of the e2e control plane. Sourced by build-control-plane.sh and cluster.sh.
# The Kubernetes staging modules (k8s.io/api, k8s.io/client-go, ...) are published as v0.X.Y for v1.X.Y.
K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
# helm (build-helm.sh): the release whose k8s.io libraries match K8S_VERSION's minor.
HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# Qdrant server (qdrant.sh): the prebuilt binary or sources from ../shared/qdrant, else the upstream tag.
QDRANT_VERSION="${QDRANT_VERSION:-v1.18.3}"
# Monitoring test bed (build-monitoring.sh). Prometheus release v3.X.Y is the Go module version
# v0.3XX.Y (v3.16.0 -> v0.316.0); prometheus-operator's releases are its module versions.
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-v3.16.0}"
PROMETHEUS_OPERATOR_VERSION="${PROMETHEUS_OPERATOR_VERSION:-v0.93.1}"

# Where binaries, the Go module cache and the Go build cache live (outside the checkout).
RAGOPS_E2E_CACHE="${RAGOPS_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ragops-e2e}"
E2E_BIN_DIR="${RAGOPS_E2E_CACHE}/bin/${K8S_VERSION}"
# Argo Rollouts (build-argo-rollouts.sh), only for `make bench-operator`; the zip hash pins the
# module and, through its own go.sum, every dependency.
ARGO_ROLLOUTS_VERSION="${ARGO_ROLLOUTS_VERSION:-v1.9.1}"
ARGO_ROLLOUTS_SUM="${ARGO_ROLLOUTS_SUM:-h1:+oZciUkeJYVb1vPMOhat4JQlk525j/aT2yizEkVkjLs=}"
# Gateway API (gateway-api-crds.sh): its standard CRDs, for the canary's HTTPRoute weights.
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
GATEWAY_API_SUM="${GATEWAY_API_SUM:-h1:lKpJa5bGlraC/QeACvCpsHLdmO6y0iKfzVl6gzaFEYc=}"
