output "function_url" {
  description = "Set as CREDWATCH_SINK_<NAME>_URL, with CREDWATCH_SINK_<NAME>_TYPE=webhook and FORMAT=asff."
  value       = aws_lambda_function_url.importer.function_url
}

output "function_arn" {
  value = aws_lambda_function.importer.arn
}

output "sink_environment" {
  description = "The credwatch sink settings for this receiver (NAME is yours; SECRET is the stored secret's value)."
  value       = "CREDWATCH_SINK_<NAME>_TYPE=webhook CREDWATCH_SINK_<NAME>_FORMAT=asff CREDWATCH_SINK_<NAME>_URL=${aws_lambda_function_url.importer.function_url}"
}
