#!/usr/bin/env bash
# Dagster on EKS with Dagster's Helm chart and deploy/helm/values.yaml: the namespace, the ConfigMap of Amazon's
# RDS CA bundle (mounted by every pod that opens a DSN), and the release's image tag. The Kubernetes Secrets
# logins-pipeline-secrets and dagster-postgresql come from Secrets Manager (External Secrets Operator).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${RELEASE:?the image tag, e.g. 2026.12.1}" "${RDS_CA_BUNDLE:?global-bundle.pem}"

kubectl create namespace dagster --dry-run=client -o yaml | kubectl apply -f -
kubectl --namespace dagster create configmap rds-ca-bundle --from-file=global-bundle.pem="$RDS_CA_BUNDLE" \
    --dry-run=client -o yaml | kubectl apply -f -
helm repo add dagster https://dagster-io.github.io/helm
helm upgrade --install dagster dagster/dagster --version 1.13.27 --namespace dagster --create-namespace \
    -f deploy/helm/values.yaml --set-string "dagster-user-deployments.deployments[0].image.tag=$RELEASE"
