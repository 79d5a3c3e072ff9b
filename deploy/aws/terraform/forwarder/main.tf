# credwatch S3 path: the forwarder Lambda and its trigger; the twin of ../../cloudformation/forwarder.yaml.
# Deploy in the trail bucket's region.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.trail_bucket_name}"
  in_vpc     = length(var.subnet_ids) > 0
}

data "archive_file" "forwarder" {
  type        = "zip"
  source_file = "${path.module}/../../forwarder/forwarder.py"
  output_path = "${path.module}/.build/forwarder.zip"
}

resource "aws_sqs_queue" "failures" {
  name                      = "${var.name_prefix}-forwarder-failures"
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "failures" {
  count = var.trigger == "eventbridge" ? 1 : 0
  statement {
    sid       = "EventBridgeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.cloudtrail_files[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "failures" {
  count     = var.trigger == "eventbridge" ? 1 : 0
  queue_url = aws_sqs_queue.failures.id
  policy    = data.aws_iam_policy_document.failures[0].json
}

data "aws_iam_policy_document" "assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "forwarder" {
  statement {
    effect    = "Allow"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/*"]
  }
  statement {
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failures.arn]
  }
  dynamic "statement" {
    for_each = var.trail_kms_key_arn == null ? [] : [var.trail_kms_key_arn]
    content {
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "forwarder" {
  name_prefix        = "${var.name_prefix}-forwarder-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "forwarder" {
  name   = "read-cloudtrail-files"
  role   = aws_iam_role.forwarder.id
  policy = data.aws_iam_policy_document.forwarder.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.forwarder.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_iam_role_policy_attachment" "vpc" {
  count      = local.in_vpc ? 1 : 0
  role       = aws_iam_role.forwarder.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

resource "aws_cloudwatch_log_group" "forwarder" {
  name              = "/aws/lambda/${var.name_prefix}-forwarder"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "forwarder" {
  function_name                  = "${var.name_prefix}-forwarder"
  description                    = "Posts CloudTrail log files to credwatch"
  runtime                        = "python3.12"
  handler                        = "forwarder.handler"
  role                           = aws_iam_role.forwarder.arn
  filename                       = data.archive_file.forwarder.output_path
  source_code_hash               = data.archive_file.forwarder.output_base64sha256
  timeout                        = 300
  memory_size                    = 512
  reserved_concurrent_executions = var.reserved_concurrency
  environment {
    variables = {
      CREDWATCH_URL   = var.credwatch_base_url
      CREDWATCH_TOKEN = var.ingest_token
    }
  }
  dynamic "vpc_config" {
    for_each = local.in_vpc ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }
  depends_on = [aws_cloudwatch_log_group.forwarder, aws_iam_role_policy_attachment.logs]
  tags       = var.tags
}

resource "aws_lambda_function_event_invoke_config" "forwarder" {
  function_name                = aws_lambda_function.forwarder.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600
  destination_config {
    on_failure {
      destination = aws_sqs_queue.failures.arn
    }
  }
}

# ---- trigger: EventBridge (default) ---------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "cloudtrail_files" {
  count       = var.trigger == "eventbridge" ? 1 : 0
  name        = "${var.name_prefix}-cloudtrail-files"
  description = "CloudTrail log files (not digests) written to the trail bucket"
  state       = "ENABLED"
  event_pattern = jsonencode({
    source      = ["aws.s3"]
    detail-type = ["Object Created"]
    detail = {
      bucket = { name = [var.trail_bucket_name] }
      object = { key = [{ wildcard = "*/CloudTrail/*.json.gz" }] }
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "forwarder" {
  count     = var.trigger == "eventbridge" ? 1 : 0
  rule      = aws_cloudwatch_event_rule.cloudtrail_files[0].name
  target_id = "forwarder"
  arn       = aws_lambda_function.forwarder.arn
  retry_policy {
    maximum_event_age_in_seconds = 86400
    maximum_retry_attempts       = 185
  }
  dead_letter_config {
    arn = aws_sqs_queue.failures.arn
  }
}

resource "aws_lambda_permission" "eventbridge" {
  count         = var.trigger == "eventbridge" ? 1 : 0
  statement_id  = "AllowEventBridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.forwarder.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.cloudtrail_files[0].arn
}

# ---- trigger: S3 event notification ---------------------------------------------------------------------------------

resource "aws_lambda_permission" "s3" {
  count          = var.trigger == "s3_notification" ? 1 : 0
  statement_id   = "AllowS3"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.forwarder.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = local.bucket_arn
  source_account = data.aws_caller_identity.current.account_id
}

# Careful: this resource replaces every notification the bucket already has.
resource "aws_s3_bucket_notification" "cloudtrail_files" {
  count  = var.trigger == "s3_notification" ? 1 : 0
  bucket = var.trail_bucket_name
  lambda_function {
    lambda_function_arn = aws_lambda_function.forwarder.arn
    events              = ["s3:ObjectCreated:*"]
    filter_suffix       = ".json.gz"
  }
  depends_on = [aws_lambda_permission.s3]
}

resource "aws_cloudwatch_metric_alarm" "failures" {
  alarm_name          = "${var.name_prefix}-forwarder-failures"
  alarm_description   = "CloudTrail files that could not be delivered to credwatch are waiting in the failure queue."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.failures.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = var.tags
}
