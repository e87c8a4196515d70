#!/usr/bin/env bash
# A new release: its image (step 4), its migrations before its code (the old code runs on the new schema:
# migrations only add), then the services on the new image. Runs already going finish on the old image.
source "$(dirname "$0")/lib.sh"
: "${ACCOUNT:?}" "${REGION:?}" "${RELEASE:?}" "${PRIVATE_SUBNETS:?}"
image="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com/logins-pipeline:$RELEASE"

deploy/steps/4-image.sh
aws cloudformation deploy --stack-name logins-pipeline-ecs --template-file deploy/cloudformation/dagster-ecs.yaml \
    --parameter-overrides MigrateImage="$image"
run_migrate_task
aws cloudformation deploy --stack-name logins-pipeline-ecs --template-file deploy/cloudformation/dagster-ecs.yaml \
    --parameter-overrides Image="$image" MigrateImage=""
