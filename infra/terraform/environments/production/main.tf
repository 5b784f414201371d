# Emporium in production on AWS: the network, the EKS cluster, PostgreSQL, Redis, the
# secrets, NATS and the platform's chart, wired together. docs/DEPLOY.md is the walk-through.

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Kubernetes and Helm reach the cluster with a short-lived token from the AWS CLI.
provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)

    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

locals {
  name = "emporium-${var.environment}"
  tags = merge(var.tags, {
    Project     = "emporium"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
  # Every service with its state in PostgreSQL: the postgres ones and the document (mongo)
  # ones, which use PostgreSQL JSONB on AWS. Redis services have no database.
  database_services = toset([for name, service in local.services : name if service.store != "redis"])
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cluster_name       = local.name
  cidr_block         = var.vpc_cidr_block
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  tags               = local.tags
}

module "eks" {
  source = "../../modules/eks"

  name                         = local.name
  kubernetes_version           = var.kubernetes_version
  subnet_ids                   = module.network.private_subnet_ids
  endpoint_public_access       = var.eks_endpoint_public_access
  endpoint_public_access_cidrs = var.eks_endpoint_public_access_cidrs
  admin_role_arns              = var.eks_admin_role_arns
  node_groups                  = var.node_groups
  tags                         = local.tags
}

module "secrets" {
  source = "../../modules/secrets"

  name                 = local.name
  nats_credentials_dir = var.nats_credentials_dir
  tags                 = local.tags
}

resource "kubernetes_namespace_v1" "emporium" {
  metadata {
    name = var.namespace
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
    }
  }

  depends_on = [module.eks]
}

module "postgres" {
  source = "../../modules/postgres"

  name                        = local.name
  services                    = local.database_services
  vpc_id                      = module.network.vpc_id
  subnet_ids                  = module.network.private_subnet_ids
  allowed_security_group_ids  = [module.eks.cluster_security_group_id]
  engine_version              = var.postgres_engine_version
  instance_class              = var.postgres_instance_class
  allocated_storage_gib       = var.postgres_allocated_storage_gib
  max_allocated_storage_gib   = var.postgres_max_allocated_storage_gib
  read_replica_count          = var.postgres_read_replica_count
  read_replica_instance_class = var.postgres_read_replica_instance_class
  secret_prefix               = local.name
  secrets_kms_key_arn         = module.secrets.kms_key_arn
  kubernetes_namespace        = kubernetes_namespace_v1.emporium.metadata[0].name
  tags                        = local.tags
}

module "redis" {
  source = "../../modules/redis"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  node_type                  = var.redis_node_type
  replica_count              = var.redis_replica_count
  secret_prefix              = local.name
  secrets_kms_key_arn        = module.secrets.kms_key_arn
  tags                       = local.tags
}

module "nats" {
  source = "../../modules/nats"

  namespace             = kubernetes_namespace_v1.emporium.metadata[0].name
  cluster_size          = var.nats_cluster_size
  jetstream_volume_size = var.nats_jetstream_volume_size
  volume_kms_key_arn    = module.eks.kms_key_arn
  authorization_secret  = module.secrets.nats_authorization_secret
  tls_secret_name       = var.nats_tls_secret_name

  # The volumes need the EBS CSI driver.
  depends_on = [module.eks]
}

module "emporium" {
  source = "../../modules/emporium"

  namespace                 = kubernetes_namespace_v1.emporium.metadata[0].name
  chart_path                = "${path.root}/../../../helm/emporium"
  services                  = local.services
  image                     = var.image
  nats_url                  = module.nats.url
  nats_tls_ca_secret        = var.nats_tls_ca_secret
  nats_seed_secrets         = module.secrets.nats_seed_secrets
  key_set_signer_public_key = module.secrets.key_set_signer_public_key
  postgres_secrets          = module.postgres.service_secrets
  redis_secret              = module.redis.secret
  store_cidr_blocks         = module.network.private_subnet_cidr_blocks
  otel_endpoint             = var.otel_endpoint
  gateway_replicas          = var.gateway_replicas
  ingress                   = var.ingress
  service_monitor           = var.service_monitor
  extra_values              = var.chart_extra_values

  # The services start once their databases exist.
  depends_on = [module.postgres, module.nats]
}
