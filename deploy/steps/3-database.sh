#!/usr/bin/env bash
# 3. The RDS instance (deploy/cloudformation/database.yaml) and its bootstrap (deploy/rds/bootstrap.sql), from a
#    host in the VPC with psql and Amazon's RDS CA bundle (RDS_CA_BUNDLE); the owners' passwords go straight
#    into their secrets.
source "$(dirname "$0")/lib.sh"
: "${VPC_ID:?}" "${PRIVATE_SUBNETS:?}" "${RDS_CA_BUNDLE:?global-bundle.pem}"

aws cloudformation deploy --stack-name logins-database --template-file deploy/cloudformation/database.yaml \
    --capabilities CAPABILITY_IAM --parameter-overrides VpcId="$VPC_ID" PrivateSubnetIds="$PRIVATE_SUBNETS"
if ! has_value logins/admin-dsn; then
    master=$(aws secretsmanager get-secret-value --secret-id "$(output logins-database MasterUserSecretArn)" \
        --query SecretString --output text)
    owner_password=$(openssl rand -hex 24)
    dagster_password=$(openssl rand -hex 24)
    PGPASSWORD=$(jq -r .password <<< "$master") psql -X -v ON_ERROR_STOP=1 \
        "host=$(output logins-database DatabaseAddress) dbname=postgres user=$(jq -r .username <<< "$master") sslmode=verify-full sslrootcert=$RDS_CA_BUNDLE" \
        -v owner_password="$owner_password" -v dagster_password="$dagster_password" -f deploy/rds/bootstrap.sql
    aws secretsmanager put-secret-value --secret-id logins/admin-dsn \
        --secret-string "$(dsn logins_owner "$owner_password")" > /dev/null
    aws secretsmanager put-secret-value --secret-id logins/dagster-pg-password --secret-string "$dagster_password" > /dev/null
fi
