output "function_arn" {
  value = aws_lambda_function.forwarder.arn
}

output "failure_queue_url" {
  value = aws_sqs_queue.failures.id
}
