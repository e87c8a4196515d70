#!/usr/bin/env bash
# 5. Dagster on ECS (deploy/cloudformation/dagster-ecs.yaml) with no task running yet (RunServices=false), the
#    migrate task as the schema's owner, then the pipeline's, the retention's and the erasure's logins
#    (deploy/rds/logins.sql: they join logins_writer, logins_retention and logins_erasure, which the migrations
#    create) and their DSN secrets, the writer's last (the step's guard).
source "$(dirname "$0")/lib.sh"
: "${ACCOUNT:?}" "${REGION:?}" "${RELEASE:?}" "${VPC_ID:?}" "${PRIVATE_SUBNETS:?}" "${VPN_CIDR:?}" "${CERTIFICATE_ARN:?}" "${RDS_CA_BUNDLE:?}"

aws cloudformation deploy --stack-name logins-pipeline-ecs --template-file deploy/cloudformation/dagster-ecs.yaml \
    --parameter-overrides RunServices=false Image="$ACCOUNT.dkr.ecr.$REGION.amazonaws.com/logins-pipeline:$RELEASE" \
        VpcId="$VPC_ID" PrivateSubnetIds="$PRIVATE_SUBNETS" WebserverClientCidr="$VPN_CIDR" \
        CertificateArn="$CERTIFICATE_ARN" DagsterDbHost="$(output logins-database DatabaseAddress)" \
        DatabaseSecurityGroupId="$(output logins-database DatabaseSecurityGroupId)"
run_migrate_task
if ! has_value logins/postgres-dsn; then
    writer_password=$(openssl rand -hex 24)
    retention_password=$(openssl rand -hex 24)
    erasure_password=$(openssl rand -hex 24)
    admin_dsn=$(aws secretsmanager get-secret-value --secret-id logins/admin-dsn --query SecretString --output text)
    psql -X -v ON_ERROR_STOP=1 "${admin_dsn/\/etc\/ssl\/certs\/rds-global-bundle.pem/$RDS_CA_BUNDLE}" \
        -v writer_password="$writer_password" -v retention_password="$retention_password" \
        -v erasure_password="$erasure_password" -f deploy/rds/logins.sql
    aws secretsmanager put-secret-value --secret-id logins/retention-dsn \
        --secret-string "$(dsn logins_retention_app "$retention_password")" > /dev/null
    aws secretsmanager put-secret-value --secret-id logins/erasure-dsn \
        --secret-string "$(dsn logins_erasure_app "$erasure_password")" > /dev/null
    aws secretsmanager put-secret-value --secret-id logins/postgres-dsn \
        --secret-string "$(dsn logins_writer_app "$writer_password")" > /dev/null
fi
