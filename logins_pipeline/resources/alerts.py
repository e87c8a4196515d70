"""Alerts to an SNS topic, on dagster-aws's boto3 configuration. No topic configured: alerts are off."""

import boto3
from botocore.config import Config
from dagster_aws.utils import ResourceWithBoto3Configuration
from pydantic import Field

MAX_SUBJECT = 100  # SNS's limit for an e-mail subject


class SNSAlertResource(ResourceWithBoto3Configuration):
    topic_arn: str = Field(default="", description="SNS topic for alerts (LOGINS_ALERT_SNS_TOPIC_ARN); empty: off")

    def publish(self, subject: str, message: str) -> str | None:
        """Publish one alert; returns SNS's message id, or None when no topic is configured."""
        if not self.topic_arn:
            return None
        session = boto3.session.Session(profile_name=self.profile_name, region_name=self.region_name)
        client = session.client(
            "sns",
            endpoint_url=self.endpoint_url,  # None: boto3 uses AWS_ENDPOINT_URL_SNS, or real AWS
            use_ssl=self.use_ssl,
            verify=self.verify,
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            config=Config(retries={"max_attempts": self.max_attempts, "mode": "standard"}, connect_timeout=5),
        )
        response = client.publish(TopicArn=self.topic_arn, Subject=subject[:MAX_SUBJECT], Message=message)
        message_id: str = response["MessageId"]
        return message_id
