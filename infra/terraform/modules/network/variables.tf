variable "name" {
  description = "The name of the VPC and the prefix of everything in it."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "Use 2 to 31 lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "cluster_name" {
  description = "The EKS cluster whose load balancers use these subnets (the subnets are tagged for it)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,38}$", var.cluster_name))
    error_message = "Use 2 to 39 lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "The VPC's IPv4 range; a /16 gives each subnet a /20."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) <= 18
    error_message = "Give a valid IPv4 CIDR block of /18 or larger."
  }
}

variable "availability_zones" {
  description = "The availability zones to spread over, by name (such as eu-west-1a); a subnet of each kind per zone. The NATS cluster and RDS multi-AZ want three."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 6 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Name between 2 and 6 different availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every zone instead of one per zone: cheaper, but a zone's outage cuts the others' outbound traffic."
  type        = bool
  default     = false
}

variable "log_retention_days" {
  description = "How long VPC flow logs are kept, in days."
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
