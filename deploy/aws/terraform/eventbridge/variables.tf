variable "credwatch_base_url" {
  description = "Public HTTPS base URL of credwatch, without a trailing slash (e.g. https://credwatch.example.com)."
  type        = string
  validation {
    condition     = can(regex("^https://[^/\\s]+(/[^\\s]*[^/\\s])?$", var.credwatch_base_url))
    error_message = "credwatch_base_url must be an https:// URL without a trailing slash."
  }
}

variable "ingest_token" {
  description = "One of credwatch's CREDWATCH_INGEST_TOKENS, sent as the X-Api-Key header."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.ingest_token) >= 16
    error_message = "ingest_token must be at least 16 characters."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "credwatch"
}

variable "invocation_rate_limit_per_second" {
  description = "Ceiling on requests per second from this region to credwatch; events above it are queued and retried."
  type        = number
  default     = 50
}

variable "maximum_event_age_in_seconds" {
  description = "How long EventBridge retries an event (429/5xx/timeouts) before the dead-letter queue."
  type        = number
  default     = 86400
}

variable "maximum_retry_attempts" {
  type    = number
  default = 185
}

variable "dead_letter_retention_seconds" {
  description = "How long undelivered events stay in the dead-letter queue (14 days, the SQS maximum)."
  type        = number
  default     = 1209600
}

variable "tags" {
  type    = map(string)
  default = {}
}
