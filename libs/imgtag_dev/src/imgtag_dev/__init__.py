"""Developer tooling for ImgTag: codegen, the gateway config and the embedded local stack."""

import os

# With gRPC's fork support on, grpcio 1.80-1.83 restarts its poller in a forked child, which can
# die on EBADF (grpc/grpc#43055). The stack's children start with vfork and never run these
# handlers (processes.spawn); this covers the forks that remain, such as a bench's
# multiprocessing pool, when imgtag_dev is imported before grpc. None of them uses the parent's
# gRPC, so the fork handlers are not needed.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
