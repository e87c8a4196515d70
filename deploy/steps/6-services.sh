#!/usr/bin/env bash
# 6. The code server, daemon and webserver (every other parameter keeps its value), once the migrate task has
#    succeeded and every secret has a value. A deployment whose tasks keep failing stops and rolls back.
source "$(dirname "$0")/lib.sh"

aws cloudformation deploy --stack-name logins-pipeline-ecs --template-file deploy/cloudformation/dagster-ecs.yaml \
    --parameter-overrides RunServices=true
aws ecs wait services-stable --cluster logins-pipeline --services code daemon webserver
echo "UI: https://<the certificate's host name>, a CNAME of $(output logins-pipeline-ecs LoadBalancerDnsName)"
