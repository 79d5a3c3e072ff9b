variable "source_type" {
  description = <<-EOT
    What feeds the Firehose stream: "cloudwatch_logs" (a subscription filter on the log group a CloudTrail trail
    writes to; the twin of ../../cloudformation/firehose-cloudwatch.yaml) or "eventbridge" (a rule on the default bus;
    the twin of ../../cloudformation/firehose-eventbridge.yaml).
  EOT
  type        = string
  validation {
    condition     = contains(["cloudwatch_logs", "eventbridge"], var.source_type)
    error_message = "source_type must be \"cloudwatch_logs\" or \"eventbridge\"."
  }
}

variable "credwatch_base_url" {
  description = "Public HTTPS base URL of credwatch on port 443, without a trailing slash (e.g. https://credwatch.example.com)."
  type        = string
  validation {
    condition     = can(regex("^https://[^/\\s:]+(/[^\\s]*[^/\\s])?$", var.credwatch_base_url))
    error_message = "credwatch_base_url must be an https:// URL on the default port, without a trailing slash."
  }
}

variable "ingest_token" {
  description = "One of credwatch's CREDWATCH_INGEST_TOKENS; kept in Secrets Manager, sent as X-Amz-Firehose-Access-Key."
  type        = string
  sensitive   = true
  validation {
    condition     = length(var.ingest_token) >= 16
    error_message = "ingest_token must be at least 16 characters."
  }
}

variable "cloudtrail_log_group_name" {
  description = "source_type cloudwatch_logs: the log group your trail delivers to (at most two subscription filters per log group)."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name; also the Firehose stream's name and its log group's last part."
  type        = string
  default     = "credwatch"
}

variable "buffer_size_mib" {
  description = "Firehose buffer before a request to credwatch (1-16 MiB; up to 16 fits credwatch's default 32 MiB body cap)."
  type        = number
  default     = 4
  validation {
    condition     = var.buffer_size_mib >= 1 && var.buffer_size_mib <= 16
    error_message = "buffer_size_mib must be 1-16 (Firehose allows 64, credwatch's default body cap does not)."
  }
}

variable "buffer_interval_seconds" {
  description = "Longest time Firehose holds records before a request (0-900 s): the latency Firehose adds."
  type        = number
  default     = 60
  validation {
    condition     = var.buffer_interval_seconds >= 0 && var.buffer_interval_seconds <= 900
    error_message = "buffer_interval_seconds must be 0-900."
  }
}

variable "retry_duration_seconds" {
  description = "How long Firehose retries a request credwatch did not accept before backing the batch up to S3 (0-7200 s)."
  type        = number
  default     = 7200
  validation {
    condition     = var.retry_duration_seconds >= 0 && var.retry_duration_seconds <= 7200
    error_message = "retry_duration_seconds must be 0-7200."
  }
}

variable "backup_retention_days" {
  description = "Days the backup bucket keeps batches Firehose could not deliver."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Days Firehose's delivery error log is kept."
  type        = number
  default     = 30
}

variable "freshness_alarm_seconds" {
  description = "Alarm when the oldest undelivered record is older than this (keep it >= buffer_interval_seconds + 900)."
  type        = number
  default     = 960
}

variable "maximum_event_age_in_seconds" {
  description = "source_type eventbridge: how long EventBridge retries putting an event into Firehose before the dead-letter queue."
  type        = number
  default     = 86400
}

variable "maximum_retry_attempts" {
  type    = number
  default = 185
}

variable "dead_letter_retention_seconds" {
  description = "source_type eventbridge: how long events EventBridge could not put into Firehose stay in the dead-letter queue."
  type        = number
  default     = 1209600
}

variable "tags" {
  type    = map(string)
  default = {}
}
