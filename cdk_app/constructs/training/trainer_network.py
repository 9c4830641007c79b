"""The trainer's network: public subnets and no NAT gateway, so an idle network costs nothing.

Why it is safe: the security group has no inbound rule (nothing can open a connection to a
trainer), instances have no SSH key (access is through Session Manager, over the same outbound
HTTPS), IMDSv2 is required, and outbound traffic is limited to HTTPS. S3 and DynamoDB traffic
stays inside AWS through free gateway endpoints. A NAT gateway would cost about $33 a month
whether or not anything trains; a public IPv4 address costs $0.005 an hour, only while a
trainer runs.
"""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from cdk_app.constructs.shared.log_group import log_group


class TrainerNetwork(Construct):
    """VPC with public subnets in two zones, gateway endpoints, flow logs, locked-down SG."""

    def __init__(self, scope: Construct, id_: str, *, log_retention_days: int) -> None:
        super().__init__(scope, id_)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public",
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=24,
                    map_public_ip_on_launch=True,
                )
            ],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(
                    service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
                ),
            },
            flow_logs={
                "rejected": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                        log_group(self, "FlowLogs", retention_days=log_retention_days)
                    ),
                    # Accepted traffic is HTTPS we started; rejected traffic is what to look at.
                    traffic_type=ec2.FlowLogTrafficType.REJECT,
                )
            },
        )
        self.subnets = self.vpc.public_subnets
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=self.vpc,
            description="Trainer: no inbound; outbound HTTPS only (AWS APIs, ECR Public, PyPI)",
            allow_all_outbound=False,
        )
        self.security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS APIs, ECR Public and PyPI"
        )
