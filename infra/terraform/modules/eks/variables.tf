variable "name" {
  description = "The cluster's name and the prefix of its IAM roles and keys."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.name))
    error_message = "Use 2 to 39 lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "The EKS Kubernetes version (upgrade one minor version at a time)."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "Give a version like 1.33."
  }
}

variable "subnet_ids" {
  description = "The private subnets of the control plane's interfaces and the nodes, one per zone."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Whether the Kubernetes API is reachable from outside the VPC too (from endpoint_public_access_cidrs only). Off: run Terraform and kubectl from inside the VPC (a VPN or a bastion)."
  type        = bool
  default     = false
}

variable "endpoint_public_access_cidrs" {
  description = "The ranges that may reach the public API endpoint, when it is on."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.endpoint_public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "Give valid CIDR blocks, and not 0.0.0.0/0."
  }
}

variable "admin_role_arns" {
  description = "IAM roles (or users) given cluster admin, besides the identity that creates the cluster."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(role|user)/", arn))])
    error_message = "Give IAM role or user ARNs."
  }
}

variable "node_groups" {
  description = "Managed node groups by name: instance types, ON_DEMAND or SPOT, sizes and labels."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    desired_size   = number
    max_size       = number
    labels         = optional(map(string), {})
  }))

  validation {
    condition     = length(var.node_groups) > 0
    error_message = "Give at least one node group."
  }

  validation {
    condition = alltrue([
      for group in values(var.node_groups) :
      group.min_size >= 0 && group.min_size <= group.desired_size && group.desired_size <= group.max_size && contains(["ON_DEMAND", "SPOT"], group.capacity_type)
    ])
    error_message = "Each group needs 0 <= min_size <= desired_size <= max_size and a capacity type of ON_DEMAND or SPOT."
  }
}

variable "node_disk_size_gib" {
  description = "The size of each node's encrypted root volume, in GiB."
  type        = number
  default     = 50

  validation {
    condition     = var.node_disk_size_gib >= 20 && var.node_disk_size_gib <= 1000
    error_message = "Use between 20 and 1000 GiB."
  }
}

variable "log_retention_days" {
  description = "How long control-plane logs are kept, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "Use a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
