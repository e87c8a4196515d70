#!/usr/bin/env bash
# 8. The first run, as an operator (the operator role, with MFA): the sensor starts a run once logins wait in
#    the queue; `status` shows the queues and what the tables hold.
source "$(dirname "$0")/lib.sh"
: "${REGION:?}"

export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION" LOGINS_ENVIRONMENT=production
LOGINS_SQS_QUEUE_URL=$(output logins-pipeline QueueUrl)
LOGINS_POSTGRES_DSN=$(aws secretsmanager get-secret-value --secret-id logins/postgres-dsn --query SecretString --output text)
LOGINS_MASKING_KEY=$(aws secretsmanager get-secret-value --secret-id logins/masking-key --query SecretString --output text)
export LOGINS_SQS_QUEUE_URL LOGINS_POSTGRES_DSN LOGINS_MASKING_KEY
logins-pipeline status
