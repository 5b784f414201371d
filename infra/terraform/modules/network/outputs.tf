output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.main.id
}

output "vpc_cidr_block" {
  description = "The VPC's IPv4 range."
  value       = aws_vpc.main.cidr_block
}

output "private_subnet_ids" {
  description = "One private subnet per zone: nodes, databases, Redis."
  value       = aws_subnet.private[*].id
}

output "private_subnet_cidr_blocks" {
  description = "The private subnets' IPv4 ranges: where the databases and Redis are."
  value       = aws_subnet.private[*].cidr_block
}

output "public_subnet_ids" {
  description = "One public subnet per zone: load balancers and NAT gateways."
  value       = aws_subnet.public[*].id
}

output "availability_zones" {
  description = "The zones the subnets are in, in subnet order."
  value       = local.zones
}
