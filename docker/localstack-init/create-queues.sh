#!/usr/bin/env bash
# LocalStack READY hook (mounted into /etc/localstack/init/ready.d/): creates the dead-letter queue,
# then the login queue with a redrive policy pointing at it, and the SNS topic for run-failure alerts.
#
# LocalStack keeps state in memory (PERSISTENCE=0), so this runs against an empty SQS on every start.
# A non-zero exit marks the script ERROR at /_localstack/init/ready, which keeps the container unhealthy.
#
# The names must match logins_pipeline.settings.QUEUE_NAME / DEAD_LETTER_QUEUE_NAME / ALERT_TOPIC_NAME
# (checked by logins_pipeline_tests/unit/test_compose_static.py).
set -euo pipefail

QUEUE_NAME="login-queue"
DLQ_NAME="login-queue-dlq"
TOPIC_NAME="logins-pipeline-alerts"
# A message received this many times without being deleted moves to the DLQ.
MAX_RECEIVE_COUNT=5
# Seconds a received message stays invisible to other consumers while one run handles it.
VISIBILITY_TIMEOUT=60
# Keep dead letters for the SQS maximum (14 days) rather than the default 4, to give people time to look.
DLQ_RETENTION_SECONDS=1209600

export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

dlq_url=$(awslocal sqs create-queue \
    --queue-name "$DLQ_NAME" \
    --attributes "MessageRetentionPeriod=${DLQ_RETENTION_SECONDS}" \
    --query QueueUrl --output text)

dlq_arn=$(awslocal sqs get-queue-attributes \
    --queue-url "$dlq_url" \
    --attribute-names QueueArn \
    --query Attributes.QueueArn --output text)

# RedrivePolicy is itself a JSON document stored as a string attribute, hence the escaped quotes.
attributes=$(printf '{"VisibilityTimeout": "%s", "RedrivePolicy": "{\\"deadLetterTargetArn\\":\\"%s\\",\\"maxReceiveCount\\":\\"%s\\"}"}' \
    "$VISIBILITY_TIMEOUT" "$dlq_arn" "$MAX_RECEIVE_COUNT")

queue_url=$(awslocal sqs create-queue \
    --queue-name "$QUEUE_NAME" \
    --attributes "$attributes" \
    --query QueueUrl --output text)

topic_arn=$(awslocal sns create-topic --name "$TOPIC_NAME" --query TopicArn --output text)

echo "create-queues: ${queue_url} (redrive to ${dlq_arn} after ${MAX_RECEIVE_COUNT} receives); alerts: ${topic_arn}"
