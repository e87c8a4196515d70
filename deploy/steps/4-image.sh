#!/usr/bin/env bash
# 4. The image, built for linux/amd64 (what Fargate runs: an image built on an ARM laptop without --platform
#    would not start), with Amazon's RDS CA bundle checked against its SHA-256, pushed to ECR under an
#    immutable tag. Needs docker (with buildx for --platform on another architecture).
source "$(dirname "$0")/lib.sh"
: "${ACCOUNT:?}" "${REGION:?}" "${RELEASE:?the image tag, e.g. 2026.12.1}" "${RDS_CA_BUNDLE:?}" "${RDS_CA_BUNDLE_SHA256:?}"
registry="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com"

aws ecr describe-repositories --repository-names logins-pipeline > /dev/null 2>&1 ||
    aws ecr create-repository --repository-name logins-pipeline --image-tag-mutability IMMUTABLE \
        --image-scanning-configuration scanOnPush=true --encryption-configuration encryptionType=KMS > /dev/null
aws ecr get-login-password --region "$REGION" | docker login --username AWS --password-stdin "$registry"
mkdir -p docker/rds-ca && cp "$RDS_CA_BUNDLE" docker/rds-ca/global-bundle.pem
docker build --platform linux/amd64 --build-arg RDS_CA_BUNDLE_SHA256="$RDS_CA_BUNDLE_SHA256" \
    -t "$registry/logins-pipeline:$RELEASE" .
docker push "$registry/logins-pipeline:$RELEASE"
