variable "trail_bucket_name" {
  description = "The S3 bucket the trail (usually the organisation trail) delivers to."
  type        = string
}

variable "trail_kms_key_arn" {
  description = "KMS key the trail encrypts its files with (SSE-KMS); null for SSE-S3."
  type        = string
  default     = null
}

variable "credwatch_base_url" {
  description = "Base URL of credwatch without a trailing slash (https in production)."
  type        = string
  validation {
    condition     = can(regex("^https?://[^/\\s]+(/[^\\s]*[^/\\s])?$", var.credwatch_base_url))
    error_message = "credwatch_base_url must be an http(s):// URL without a trailing slash."
  }
}

variable "ingest_token" {
  description = "One of credwatch's CREDWATCH_INGEST_TOKENS."
  type        = string
  sensitive   = true
}

variable "trigger" {
  description = <<-EOT
    How new files reach the function: "eventbridge" (an EventBridge rule on the bucket's Object Created events; the
    bucket must have EventBridge notifications on) or "s3_notification" (an S3 event notification; Terraform then
    owns the bucket's whole notification configuration).
  EOT
  type        = string
  default     = "eventbridge"
  validation {
    condition     = contains(["eventbridge", "s3_notification"], var.trigger)
    error_message = "trigger must be eventbridge or s3_notification."
  }
}

variable "name_prefix" {
  type    = string
  default = "credwatch"
}

variable "reserved_concurrency" {
  description = "Ceiling on parallel posts to credwatch (each file is one request)."
  type        = number
  default     = 10
}

variable "log_retention_days" {
  type    = number
  default = 30
}

variable "subnet_ids" {
  description = "Optional subnets, when credwatch is reachable only inside the VPC."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  type    = list(string)
  default = []
}

variable "tags" {
  type    = map(string)
  default = {}
}
