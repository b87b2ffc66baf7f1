"""What the container images and the manifests under deploy/ agree on: service names (the
compose services and the Kubernetes Services are called the same, so one gateway config serves
both), ports, where the gateway image keeps the descriptor set, and the gateway config itself.

`imgtag render-gateway --for-deployment` writes that config: the Dockerfile bakes one into the
gateway image and deploy/k8s/base/gateway/envoy.yaml is the ConfigMap's copy (a test checks it is
current). The ports are the services' own defaults (a test checks that too)."""

from __future__ import annotations

from imgtag_dev import gateway
from imgtag_dev.paths import REPO_ROOT

# Each service's gRPC port (its settings' default `port`), by service name = DNS name.
SERVICE_PORTS = {"auth": 50051, "catalog": 50052, "storage": 50053, "inference": 50054}
GATEWAY_PORT = 8080
GATEWAY_ADMIN_PORT = 9901  # loopback only
WEB_SERVICE = "web"
WEB_PORT = 8080
# Where the gateway image keeps the descriptor set that `imgtag gen` builds.
DESCRIPTOR_IN_IMAGE = "/etc/imgtag/api.pb"
# The access token issuer and audience: AuthSettings' defaults (a test keeps them equal).
JWT_ISSUER = "imgtag"
JWT_AUDIENCE = "imgtag"

K8S_GATEWAY_CONFIG = REPO_ROOT / "deploy" / "k8s" / "base" / "gateway" / "envoy.yaml"
# Behind an Ingress controller: its X-Forwarded-For entry is the client's address.
K8S_TRUSTED_HOPS = 1


def gateway_config(*, cors_origins: list[str] | None = None, trusted_hops: int = 0) -> str:
    """The gateway's Envoy config in a deployment: listening on every address, services and the
    web bundle's server by name, the descriptor where the image keeps it, logs on stdout."""
    return gateway.render(
        listen_host="0.0.0.0",
        listen_port=GATEWAY_PORT,
        admin_port=GATEWAY_ADMIN_PORT,
        access_log="/dev/stdout",
        upstreams=[gateway.Upstream(name, name, port) for name, port in SERVICE_PORTS.items()],
        cors_origins=cors_origins,
        jwt_issuer=JWT_ISSUER,
        jwt_audience=JWT_AUDIENCE,
        trusted_hops=trusted_hops,
        descriptor_in_config=DESCRIPTOR_IN_IMAGE,
        web_upstream=gateway.Upstream(WEB_SERVICE, WEB_SERVICE, WEB_PORT),
    )
