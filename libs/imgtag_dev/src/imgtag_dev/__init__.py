"""Developer tooling for ImgTag: codegen, the gateway config and the embedded local stack."""
