#!/usr/bin/env bash
# 1. The VPC endpoints (deploy/cloudformation/network.yaml) of an existing VPC's private subnets.
source "$(dirname "$0")/lib.sh"
: "${VPC_ID:?}" "${VPC_CIDR:?}" "${PRIVATE_SUBNETS:?subnet-a,subnet-b}" "${PRIVATE_ROUTE_TABLES:?rtb-a,rtb-b}"

aws cloudformation deploy --stack-name logins-network --template-file deploy/cloudformation/network.yaml \
    --parameter-overrides VpcId="$VPC_ID" VpcCidr="$VPC_CIDR" PrivateSubnetIds="$PRIVATE_SUBNETS" \
        PrivateRouteTableIds="$PRIVATE_ROUTE_TABLES"
