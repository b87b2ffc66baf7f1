"""Developer tooling for ImgTag: codegen, the gateway config and the embedded local stack."""

import os

# The supervisor (`imgtag run`, the test session) starts PostgreSQL, SeaweedFS, Envoy and the
# services with fork + exec while its own gRPC channels are busy. With gRPC's fork support on,
# grpcio 1.81 restarts its poller in the forked child, which dies on EBADF before it can exec
# (grpc/grpc#43055; 32 of 200 starts here). The children never use the parent's gRPC, so the
# fork handlers are not needed. This must be set before grpc is first imported.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
