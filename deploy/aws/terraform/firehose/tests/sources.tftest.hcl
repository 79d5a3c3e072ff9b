mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111122223333" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

variables {
  credwatch_base_url = "https://credwatch.example.com"
  ingest_token       = "tftest-ingest-token-0001"
}

run "cloudwatch_logs" {
  command = plan
  variables {
    source_type               = "cloudwatch_logs"
    cloudtrail_log_group_name = "aws-cloudtrail-logs-111122223333"
  }
  assert {
    condition     = length(aws_cloudwatch_log_subscription_filter.credwatch) == 1 && length(aws_cloudwatch_event_rule.credwatch) == 0
    error_message = "cloudwatch_logs: one subscription filter, no rule"
  }
  assert {
    condition     = aws_cloudwatch_log_subscription_filter.credwatch[0].filter_pattern == trimspace(file("filter-pattern.txt"))
    error_message = "filter pattern"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].s3_backup_mode == "FailedDataOnly"
    error_message = "backup mode"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].url == "https://credwatch.example.com/v1/ingest/firehose"
    error_message = "url"
  }
  assert {
    condition     = jsondecode(aws_secretsmanager_secret_version.access_key.secret_string) == { api_key = "tftest-ingest-token-0001" }
    error_message = "secret format"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].secrets_manager_configuration[0].enabled == true
    error_message = "the access key must come from Secrets Manager"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].access_key == null
    error_message = "no access key in the stream's configuration"
  }
  assert {
    condition     = aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].request_configuration[0].content_encoding == "GZIP"
    error_message = "GZIP requests"
  }
  assert {
    condition = (aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].retry_duration == 7200 &&
      aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].buffering_size == 4 &&
    aws_kinesis_firehose_delivery_stream.credwatch.http_endpoint_configuration[0].buffering_interval == 60)
    error_message = "defaults: retry 7200 s, buffer 4 MiB / 60 s"
  }
}

run "eventbridge" {
  command = plan
  variables {
    source_type = "eventbridge"
  }
  assert {
    condition     = length(aws_cloudwatch_log_subscription_filter.credwatch) == 0 && length(aws_cloudwatch_event_rule.credwatch) == 1 && length(aws_sqs_queue.dead_letter) == 1
    error_message = "eventbridge: one rule and queue, no subscription filter"
  }
  assert {
    condition     = jsondecode(aws_cloudwatch_event_rule.credwatch[0].event_pattern) == jsondecode(file("event-pattern.json"))
    error_message = "event pattern differs from event-pattern.json"
  }
}

run "log_group_required" {
  command = plan
  variables {
    source_type = "cloudwatch_logs"
  }
  expect_failures = [aws_cloudwatch_log_subscription_filter.credwatch]
}
