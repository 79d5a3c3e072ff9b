# credwatch Firehose paths: CloudTrail -> CloudWatch Logs -> subscription filter -> Firehose -> credwatch
# (source_type = "cloudwatch_logs", twin of ../../cloudformation/firehose-cloudwatch.yaml) and EventBridge -> Firehose
# -> credwatch (source_type = "eventbridge", twin of ../../cloudformation/firehose-eventbridge.yaml). One module: the
# stream, its secret, backup bucket, error log, role and alarms are the same for both sources; only the feeding
# resources (count on source_type) differ. See ../../README.md "Firehose".

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  from_logs  = var.source_type == "cloudwatch_logs" ? 1 : 0
  from_rule  = var.source_type == "eventbridge" ? 1 : 0
  # Sent as X-Amz-Firehose-Common-Attributes; credwatch may log it, Firehose ignores it.
  source_attribute = var.source_type == "cloudwatch_logs" ? "cloudwatch-logs" : "eventbridge"
}

# ---- access key ------------------------------------------------------------------------------------------------------

resource "aws_secretsmanager_secret" "access_key" {
  name_prefix = "${var.name_prefix}-firehose-access-key-"
  description = "credwatch ingest token for the Firehose HTTP endpoint destination (X-Amz-Firehose-Access-Key)"
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "access_key" {
  secret_id = aws_secretsmanager_secret.access_key.id
  # Firehose's secret format for HTTP endpoint destinations: {"api_key": "<key>"}.
  secret_string = jsonencode({ api_key = var.ingest_token })
}

# ---- backup bucket for batches Firehose could not deliver ------------------------------------------------------------

resource "aws_s3_bucket" "backup" {
  bucket_prefix = "${var.name_prefix}-firehose-backup-"
  tags          = var.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "backup" {
  bucket                  = aws_s3_bucket.backup.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    id     = "expire-failed-batches"
    status = "Enabled"
    filter {}
    expiration {
      days = var.backup_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "backup_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = data.aws_iam_policy_document.backup_bucket.json
}

# ---- delivery error log ----------------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "delivery" {
  name              = "/aws/kinesisfirehose/${var.name_prefix}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "destination" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.delivery.name
}

resource "aws_cloudwatch_log_stream" "backup" {
  name           = "BackupDelivery"
  log_group_name = aws_cloudwatch_log_group.delivery.name
}

# ---- the Firehose stream's role -------------------------------------------------------------------------------------

data "aws_iam_policy_document" "firehose_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "firehose" {
  # The actions AWS documents for a Firehose S3 (backup) destination, on the one bucket.
  statement {
    sid    = "BackupBucket"
    effect = "Allow"
    actions = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:PutObject",
    ]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
  }
  statement {
    sid       = "AccessKey"
    effect    = "Allow"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.access_key.arn]
  }
  statement {
    sid       = "DeliveryErrors"
    effect    = "Allow"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.delivery.arn}:*"]
  }
}

resource "aws_iam_role" "firehose" {
  name_prefix        = "${var.name_prefix}-firehose-"
  description        = "Lets Firehose write failed batches to the backup bucket, read the access key and log delivery errors"
  assume_role_policy = data.aws_iam_policy_document.firehose_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "firehose" {
  name   = "credwatch-firehose-delivery"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose.json
}

# ---- the stream ------------------------------------------------------------------------------------------------------

resource "aws_kinesis_firehose_delivery_stream" "credwatch" {
  name        = var.name_prefix
  destination = "http_endpoint"
  server_side_encryption {
    enabled  = true
    key_type = "AWS_OWNED_CMK"
  }
  http_endpoint_configuration {
    name               = "credwatch"
    url                = "${var.credwatch_base_url}/v1/ingest/firehose"
    role_arn           = aws_iam_role.firehose.arn
    buffering_size     = var.buffer_size_mib
    buffering_interval = var.buffer_interval_seconds
    retry_duration     = var.retry_duration_seconds
    s3_backup_mode     = "FailedDataOnly"
    # The access key comes from the secret (cached by Firehose, refreshed every 10 minutes); the same role reads it.
    secrets_manager_configuration {
      enabled    = true
      secret_arn = aws_secretsmanager_secret.access_key.arn
      role_arn   = aws_iam_role.firehose.arn
    }
    request_configuration {
      content_encoding = "GZIP"
      common_attributes {
        name  = "credwatch-source"
        value = local.source_attribute
      }
    }
    # No processing_configuration: CloudWatch Logs messages arrive gzip as CloudWatch Logs sends them (credwatch
    # inflates them), EventBridge events as JSON, one record each.
    s3_configuration {
      role_arn            = aws_iam_role.firehose.arn
      bucket_arn          = aws_s3_bucket.backup.arn
      prefix              = "credwatch-failed/"
      error_output_prefix = "credwatch-backup-errors/"
      compression_format  = "GZIP"
      buffering_size      = 5
      buffering_interval  = 300
      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = aws_cloudwatch_log_group.delivery.name
        log_stream_name = aws_cloudwatch_log_stream.backup.name
      }
    }
    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.delivery.name
      log_stream_name = aws_cloudwatch_log_stream.destination.name
    }
  }
  tags       = var.tags
  depends_on = [aws_iam_role_policy.firehose, aws_secretsmanager_secret_version.access_key]
}

# ---- source cloudwatch_logs: the trail's log group -> Firehose -----------------------------------------------------

data "aws_iam_policy_document" "subscription_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["logs.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:SourceArn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${local.account_id}:*"]
    }
  }
}

data "aws_iam_policy_document" "put_record" {
  statement {
    effect    = "Allow"
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.credwatch.arn]
  }
}

resource "aws_iam_role" "subscription" {
  count              = local.from_logs
  name_prefix        = "${var.name_prefix}-cwl-"
  description        = "Lets CloudWatch Logs put the trail's matching log events into the credwatch Firehose stream"
  assume_role_policy = data.aws_iam_policy_document.subscription_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "subscription" {
  count  = local.from_logs
  name   = "put-credwatch-firehose"
  role   = aws_iam_role.subscription[0].id
  policy = data.aws_iam_policy_document.put_record.json
}

resource "aws_cloudwatch_log_subscription_filter" "credwatch" {
  count           = local.from_logs
  name            = "credwatch"
  log_group_name  = var.cloudtrail_log_group_name
  destination_arn = aws_kinesis_firehose_delivery_stream.credwatch.arn
  role_arn        = aws_iam_role.subscription[0].arn
  # The EventBridge pattern in CloudWatch Logs' JSON filter syntax, on the bare CloudTrail record (eventType
  # AwsApiCall = detail-type "AWS API Call via CloudTrail"); shared with firehose-cloudwatch.yaml, which
  # tests/it_deploy.sh checks, along with the branches against event-pattern.json.
  filter_pattern = trimspace(file("${path.module}/filter-pattern.txt"))
  lifecycle {
    precondition {
      condition     = var.cloudtrail_log_group_name != null && var.cloudtrail_log_group_name != ""
      error_message = "source_type cloudwatch_logs needs cloudtrail_log_group_name."
    }
  }
  depends_on = [aws_iam_role_policy.subscription]
}

# ---- source eventbridge: default bus rule -> Firehose ---------------------------------------------------------------

data "aws_iam_policy_document" "rule_assume" {
  statement {
    effect  = "Allow"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "put_record" {
  count              = local.from_rule
  name_prefix        = "${var.name_prefix}-events-"
  description        = "Lets EventBridge put the rule's events into the credwatch Firehose stream"
  assume_role_policy = data.aws_iam_policy_document.rule_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "put_record" {
  count  = local.from_rule
  name   = "put-credwatch-firehose"
  role   = aws_iam_role.put_record[0].id
  policy = data.aws_iam_policy_document.put_record.json
}

resource "aws_sqs_queue" "dead_letter" {
  count                     = local.from_rule
  name                      = "${var.name_prefix}-firehose-rule-dlq"
  message_retention_seconds = var.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "dead_letter" {
  count = local.from_rule
  statement {
    sid       = "EventBridgeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter[0].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.credwatch[0].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letter" {
  count     = local.from_rule
  queue_url = aws_sqs_queue.dead_letter[0].id
  policy    = data.aws_iam_policy_document.dead_letter[0].json
}

resource "aws_cloudwatch_event_rule" "credwatch" {
  count          = local.from_rule
  name           = "${var.name_prefix}-firehose-cloudtrail"
  description    = "credwatch via Firehose: uses of temporary keys (AssumedRole, ASIA...) and workload key issuances, read-only calls included"
  event_bus_name = "default"
  # Without this state a rule never sees read-only management events (Get*, List*, Describe*).
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  # A copy of ../eventbridge/event-pattern.json (tests/it_deploy.sh checks the copies and both templates agree).
  event_pattern = file("${path.module}/event-pattern.json")
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "credwatch" {
  count          = local.from_rule
  rule           = aws_cloudwatch_event_rule.credwatch[0].name
  event_bus_name = "default"
  target_id      = "credwatch-firehose"
  arn            = aws_kinesis_firehose_delivery_stream.credwatch.arn
  role_arn       = aws_iam_role.put_record[0].arn
  retry_policy {
    maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.maximum_retry_attempts
  }
  dead_letter_config {
    arn = aws_sqs_queue.dead_letter[0].arn
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  count               = local.from_rule
  alarm_name          = "${var.name_prefix}-firehose-rule-dead-letters"
  alarm_description   = "EventBridge could not put credwatch events into the Firehose stream; see deploy/aws/README.md \"Firehose\""
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = var.tags
}

# ---- alarms on delivery ---------------------------------------------------------------------------------------------

resource "aws_cloudwatch_metric_alarm" "freshness" {
  alarm_name          = "${var.name_prefix}-firehose-freshness"
  alarm_description   = "The oldest record in the credwatch Firehose stream is older than freshness_alarm_seconds: credwatch unreachable, refusing the access key or failing; see the delivery error log"
  namespace           = "AWS/Firehose"
  metric_name         = "DeliveryToHttpEndpoint.DataFreshness"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.credwatch.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.freshness_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = var.tags
}

resource "aws_cloudwatch_metric_alarm" "backup" {
  alarm_name          = "${var.name_prefix}-firehose-backup"
  alarm_description   = "Firehose wrote undelivered credwatch records to the backup bucket; replay them (deploy/aws/README.md \"Firehose\")"
  namespace           = "AWS/Firehose"
  metric_name         = "BackupToS3.Records"
  dimensions          = { DeliveryStreamName = aws_kinesis_firehose_delivery_stream.credwatch.name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = var.tags
}
