variable "secret_parameter_name" {
  description = "Name (with its leading /) of an SSM SecureString parameter holding the sink's SECRET; or secret_arn."
  type        = string
  default     = null
  validation {
    condition = (var.secret_parameter_name == null ||
    can(regex("^(/[a-zA-Z0-9_.-]+)+$", var.secret_parameter_name)))
    error_message = "secret_parameter_name must be a parameter name starting with /."
  }
}

variable "secret_arn" {
  description = "ARN of a Secrets Manager secret (SecretString) holding the sink's SECRET; or secret_parameter_name."
  type        = string
  default     = null
  validation {
    condition = (var.secret_arn == null ||
    can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", var.secret_arn)))
    error_message = "secret_arn must be a Secrets Manager secret ARN."
  }
}

variable "secret_kms_key_arn" {
  description = "Customer managed KMS key of the parameter or secret; null for the AWS managed key."
  type        = string
  default     = null
}

variable "name_prefix" {
  type    = string
  default = "credwatch"
}

variable "reserved_concurrency" {
  description = "Ceiling on parallel invocations; the URL is public, so this also caps what unsigned floods can cost."
  type        = number
  default     = 5
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "tags" {
  type    = map(string)
  default = {}
}
