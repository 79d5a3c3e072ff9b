# credwatch EventBridge path for one account and region; the twin of ../../cloudformation/eventbridge.yaml.
# Instantiate once per region (a provider alias per region), see ../../README.md.

data "aws_caller_identity" "current" {}

resource "aws_cloudwatch_event_connection" "credwatch" {
  name               = "${var.name_prefix}-ingest"
  description        = "credwatch ingest token (stored by EventBridge in Secrets Manager)"
  authorization_type = "API_KEY"
  auth_parameters {
    api_key {
      key   = "X-Api-Key"
      value = var.ingest_token
    }
  }
}

resource "aws_cloudwatch_event_api_destination" "credwatch" {
  name                             = "${var.name_prefix}-ingest"
  description                      = "credwatch EventBridge ingest"
  connection_arn                   = aws_cloudwatch_event_connection.credwatch.arn
  http_method                      = "POST"
  invocation_endpoint              = "${var.credwatch_base_url}/v1/ingest/eventbridge"
  invocation_rate_limit_per_second = var.invocation_rate_limit_per_second
}

resource "aws_sqs_queue" "dead_letter" {
  name                      = "${var.name_prefix}-eventbridge-dlq"
  message_retention_seconds = var.dead_letter_retention_seconds
  sqs_managed_sse_enabled   = true
  tags                      = var.tags
}

data "aws_iam_policy_document" "dead_letter" {
  statement {
    sid       = "EventBridgeDeadLetters"
    effect    = "Allow"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.credwatch.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.dead_letter.json
}

data "aws_iam_policy_document" "invoke_assume" {
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
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "invoke" {
  statement {
    effect    = "Allow"
    actions   = ["events:InvokeApiDestination"]
    resources = [aws_cloudwatch_event_api_destination.credwatch.arn]
  }
}

resource "aws_iam_role" "invoke" {
  name_prefix        = "${var.name_prefix}-invoke-"
  description        = "Lets EventBridge invoke the credwatch API destination"
  assume_role_policy = data.aws_iam_policy_document.invoke_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "invoke" {
  name   = "invoke-credwatch-api-destination"
  role   = aws_iam_role.invoke.id
  policy = data.aws_iam_policy_document.invoke.json
}

resource "aws_cloudwatch_event_rule" "credwatch" {
  name           = "${var.name_prefix}-cloudtrail"
  description    = "credwatch: uses of temporary keys (AssumedRole, ASIA...) and workload key issuances, read-only calls included"
  event_bus_name = "default"
  # Without this state a rule never sees read-only management events (Get*, List*, Describe*).
  state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"
  # Shared with the CloudFormation template (tests/it_deploy.sh checks they are equal). Three branches: every use of
  # a temporary key; AssumeRole made by lambda, ecs-tasks, ec2 or pods.eks .amazonaws.com (a workload's key issued);
  # every AssumeRoleWithWebIdentity (IRSA; credwatch itself keeps only EKS identity providers).
  # Not codebuild.amazonaws.com: no public sample of CodeBuild's issuance record exists (docs/workloads.md 1.7, 5.6),
  # so credwatch has no CodeBuild issuer matcher yet; build keys' uses still arrive through the first branch.
  # Volume: EC2 instances refresh instance-profile keys every few hours and one refresh can issue several keys (three
  # per instance in one public capture): at a refresh every 6 h and 3 keys, 1,000 instances add 12,000 events a day
  # (72,000 if hourly); see ../../README.md. CREDWATCH_WORKLOADS switches a kind off in credwatch, but this rule
  # still forwards its issuances; drop the issuer from event-pattern.json (and the template) to stop them here.
  event_pattern = file("${path.module}/event-pattern.json")
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "credwatch" {
  rule           = aws_cloudwatch_event_rule.credwatch.name
  event_bus_name = "default"
  target_id      = "credwatch"
  arn            = aws_cloudwatch_event_api_destination.credwatch.arn
  role_arn       = aws_iam_role.invoke.arn
  retry_policy {
    maximum_event_age_in_seconds = var.maximum_event_age_in_seconds
    maximum_retry_attempts       = var.maximum_retry_attempts
  }
  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name_prefix}-eventbridge-dead-letters"
  alarm_description   = "credwatch events were dropped into the dead-letter queue; see deploy/aws/README.md"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dead_letter.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  tags                = var.tags
}
