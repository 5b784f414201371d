variable "name" {
  description = "The prefix of every secret's name (`<name>/nats/gateway.nk`) and of the KMS key's alias."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9/-]{1,62}[a-z0-9]$", var.name))
    error_message = "Use lower case letters, digits, hyphens and slashes, 3 to 64 characters."
  }
}

variable "nats_credentials_dir" {
  description = "The directory `nats-credentials --out` wrote: <identity>.nk per identity, authorization.conf and key-set-signer.pub. Keep it out of version control."
  type        = string

  validation {
    condition = alltrue([
      for file in ["authorization.conf", "key-set-signer.pub", "gateway.nk", "operator.nk"] :
      fileexists("${trimsuffix(var.nats_credentials_dir, "/")}/${file}")
    ])
    error_message = "The directory must hold what `nats-credentials --out DIR` writes: authorization.conf, key-set-signer.pub, gateway.nk, operator.nk and a seed per service."
  }
}

variable "recovery_window_in_days" {
  description = "How long a deleted secret can still be restored, in days (0 deletes at once)."
  type        = number
  default     = 30

  validation {
    condition     = var.recovery_window_in_days == 0 || (var.recovery_window_in_days >= 7 && var.recovery_window_in_days <= 30)
    error_message = "Use 0, or between 7 and 30 days."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
