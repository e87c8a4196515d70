#!/usr/bin/env bash
# 2. The KMS keys, queues, alert topic, secrets, roles and queue alarms (deploy/cloudformation/logins-pipeline.yaml),
#    then the masking and vault keys: random, different, never printed, and put once (a new masking key changes
#    every token: docs/privacy.md).
source "$(dirname "$0")/lib.sh"
: "${OPERATOR_ARN:?}" "${PII_READER_ARN:?}" "${PUBLISHER_ARN:?}" "${ALERT_EMAIL:?}"

aws cloudformation deploy --stack-name logins-pipeline --template-file deploy/cloudformation/logins-pipeline.yaml \
    --capabilities CAPABILITY_IAM \
    --parameter-overrides OperatorPrincipalArn="$OPERATOR_ARN" PiiReaderPrincipalArn="$PII_READER_ARN" \
        PublisherPrincipalArn="$PUBLISHER_ARN" AlertEmail="$ALERT_EMAIL"
for secret in logins/masking-key logins/vault-key; do
    has_value "$secret" || aws secretsmanager put-secret-value --secret-id "$secret" \
        --secret-string "$(openssl rand -base64 32)" > /dev/null
done
