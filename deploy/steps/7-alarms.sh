#!/usr/bin/env bash
# 7. The alarms publish to the alert topic: confirm the e-mail subscription (the link AWS sent), then check that
#    the topic has a confirmed subscriber and every alarm's state.
source "$(dirname "$0")/lib.sh"
topic=$(output logins-pipeline AlertTopicArn)

aws sns list-subscriptions-by-topic --topic-arn "$topic" --query 'Subscriptions[].[Protocol,Endpoint,SubscriptionArn]' --output table
aws cloudwatch describe-alarms --query "MetricAlarms[?contains(AlarmActions, '$topic')].[MetricName,StateValue]" --output table
