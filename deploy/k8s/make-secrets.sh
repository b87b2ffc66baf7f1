#!/usr/bin/env bash
# Creates the Secret `imgtag` that the manifests reference, with fresh random values, straight
# into the cluster (nothing is written to disk). Extra arguments go to kubectl, e.g.
#   deploy/k8s/make-secrets.sh                       # create it in namespace imgtag
#   deploy/k8s/make-secrets.sh --dry-run=client -o yaml > /somewhere/safe/imgtag-secret.yaml
# Keep a copy somewhere safe: the storage and inference keys seal endpoint secrets and
# vision-language providers' API keys in the database, and the
# signing key signs every session; losing them breaks restores. Set IMGTAG_ADMIN_PASSWORD to
# choose the first admin's password (otherwise auth generates one and logs it once).
set -euo pipefail
NAMESPACE=${NAMESPACE:-imgtag}
KUBECTL=${KUBECTL:-kubectl}
hex() { openssl rand -hex 32; }
admin=()
if [ -n "${IMGTAG_ADMIN_PASSWORD:-}" ]; then
  admin=(--from-literal=admin-password="$IMGTAG_ADMIN_PASSWORD")
fi
exec "$KUBECTL" create secret generic imgtag --namespace "$NAMESPACE" \
  --from-literal=service-secret="$(hex)" \
  --from-literal=postgres-password="$(hex)" \
  --from-literal=storage-secrets-key="$(hex)" \
  --from-literal=inference-secrets-key="$(hex)" \
  --from-literal=minio-root-user=imgtag \
  --from-literal=minio-root-password="$(hex)" \
  --from-file=auth-signing-key=<(openssl genpkey -algorithm ed25519) \
  "${admin[@]}" "$@"
