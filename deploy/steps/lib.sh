# Sourced by every step: stop at the first error, and read a stack's output by key.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

output() {  # output STACK KEY
    aws cloudformation describe-stacks --stack-name "$1" \
        --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}

has_value() {  # has_value SECRET: true once a value was put (describe-secret needs no kms:Decrypt)
    [ "$(aws secretsmanager describe-secret --secret-id "$1" --query VersionIdsToStages --output text)" != None ]
}

dsn() {  # dsn USER PASSWORD: a DSN of the logins database that verifies the server (RDS CA bundle, host name)
    echo "postgresql://$1:$2@$(output logins-database DatabaseAddress):5432/logins?sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"
}

run_migrate_task() {  # `logins-pipeline migrate` as a one-off task, as the schema's owner; fails unless it exits 0
    local task
    task=$(aws ecs run-task --cluster logins-pipeline --launch-type FARGATE --task-definition logins-pipeline-migrate \
        --network-configuration "awsvpcConfiguration={subnets=[$PRIVATE_SUBNETS],securityGroups=[$(output logins-pipeline-ecs MigrateSecurityGroupId)],assignPublicIp=DISABLED}" \
        --query 'tasks[0].taskArn' --output text)
    aws ecs wait tasks-stopped --cluster logins-pipeline --tasks "$task"
    [ "$(aws ecs describe-tasks --cluster logins-pipeline --tasks "$task" --query 'tasks[0].containers[0].exitCode' --output text)" = 0 ]
}
