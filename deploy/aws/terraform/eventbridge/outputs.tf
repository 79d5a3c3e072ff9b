output "rule_arn" {
  value = aws_cloudwatch_event_rule.credwatch.arn
}

output "api_destination_arn" {
  value = aws_cloudwatch_event_api_destination.credwatch.arn
}

output "connection_arn" {
  value = aws_cloudwatch_event_connection.credwatch.arn
}

output "dead_letter_queue_url" {
  value = aws_sqs_queue.dead_letter.id
}

output "dead_letter_queue_arn" {
  value = aws_sqs_queue.dead_letter.arn
}
