output "delivery_stream_arn" {
  value = aws_kinesis_firehose_delivery_stream.credwatch.arn
}

output "backup_bucket_name" {
  value = aws_s3_bucket.backup.id
}

output "access_key_secret_arn" {
  value = aws_secretsmanager_secret.access_key.arn
}

output "delivery_log_group_name" {
  value = aws_cloudwatch_log_group.delivery.name
}

output "rule_arn" {
  description = "source_type eventbridge only (null otherwise)."
  value       = one(aws_cloudwatch_event_rule.credwatch[*].arn)
}

output "dead_letter_queue_url" {
  description = "source_type eventbridge only (null otherwise)."
  value       = one(aws_sqs_queue.dead_letter[*].id)
}
