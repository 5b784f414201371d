output "cluster_name" {
  description = "The cluster's name."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API's URL."
  value       = aws_eks_cluster.main.endpoint
}

output "cluster_certificate_authority_data" {
  description = "The API's CA certificate, base64-encoded."
  value       = aws_eks_cluster.main.certificate_authority[0].data
}

output "cluster_security_group_id" {
  description = "The security group EKS puts on the control plane and the managed nodes: what the databases and Redis let in."
  value       = aws_eks_cluster.main.vpc_config[0].cluster_security_group_id
}

output "oidc_provider_arn" {
  description = "The IAM OIDC provider for IRSA."
  value       = aws_iam_openid_connect_provider.cluster.arn
}

output "kms_key_arn" {
  description = "The cluster's KMS key (Kubernetes Secrets, control-plane logs, NATS volumes)."
  value       = aws_kms_key.cluster.arn
}

output "ebs_csi_addon_version" {
  description = "The EBS CSI driver's version: volumes can be provisioned once it is there."
  value       = aws_eks_addon.ebs_csi.addon_version
}
