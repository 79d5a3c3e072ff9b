# credwatch findings into AWS Security Hub: the importer Lambda behind a function URL; the twin of
# ../../cloudformation/securityhub.yaml. Deploy in the account and region whose Security Hub should hold the findings.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  # The default product of this account and region: the only one an account may import into itself.
  product_arn         = "arn:${local.partition}:securityhub:${local.region}:${local.account_id}:product/${local.account_id}/default"
  use_secrets_manager = var.secret_arn != null
  # the parameter name starts with "/", which is also the ARN's separator
  ssm_parameter_arn = "arn:${local.partition}:ssm:${local.region}:${local.account_id}:parameter${coalesce(var.secret_parameter_name, "/")}"
  secret_resource   = local.use_secrets_manager ? var.secret_arn : local.ssm_parameter_arn
}

data "archive_file" "importer" {
  type        = "zip"
  source_file = "${path.module}/../../securityhub/handler.py"
  output_path = "${path.module}/.build/securityhub.zip"
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

data "aws_iam_policy_document" "importer" {
  statement {
    effect    = "Allow"
    actions   = ["securityhub:BatchImportFindings"]
    resources = [local.product_arn]
  }
  statement {
    effect    = "Allow"
    actions   = [local.use_secrets_manager ? "secretsmanager:GetSecretValue" : "ssm:GetParameter"]
    resources = [local.secret_resource]
  }
  dynamic "statement" {
    for_each = var.secret_kms_key_arn == null ? [] : [var.secret_kms_key_arn]
    content {
      effect    = "Allow"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "importer" {
  name_prefix        = "${var.name_prefix}-securityhub-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "importer" {
  name   = "import-findings"
  role   = aws_iam_role.importer.id
  policy = data.aws_iam_policy_document.importer.json
}

resource "aws_iam_role_policy_attachment" "logs" {
  role       = aws_iam_role.importer.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
}

resource "aws_cloudwatch_log_group" "importer" {
  name              = "/aws/lambda/${var.name_prefix}-securityhub"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "importer" {
  function_name    = "${var.name_prefix}-securityhub"
  description      = "Imports credwatch findings (webhook sink, FORMAT=asff) into Security Hub"
  runtime          = "python3.12"
  handler          = "handler.handler"
  role             = aws_iam_role.importer.arn
  filename         = data.archive_file.importer.output_path
  source_code_hash = data.archive_file.importer.output_base64sha256
  # below the sink's default TIMEOUT_MS (10 s), so credwatch hears our answer rather than timing out
  timeout                        = 8
  memory_size                    = 256
  reserved_concurrent_executions = var.reserved_concurrency
  environment {
    variables = {
      CREDWATCH_SECRET_REF    = local.use_secrets_manager ? var.secret_arn : var.secret_parameter_name
      SECURITYHUB_PRODUCT_ARN = local.product_arn
    }
  }
  lifecycle {
    precondition {
      condition     = (var.secret_arn == null) != (var.secret_parameter_name == null)
      error_message = "Give exactly one of secret_parameter_name and secret_arn."
    }
  }
  depends_on = [aws_cloudwatch_log_group.importer, aws_iam_role_policy_attachment.logs]
  tags       = var.tags
}

# auth NONE: credwatch's HMAC signature is the authentication (checked before anything else is done).
resource "aws_lambda_function_url" "importer" {
  function_name      = aws_lambda_function.importer.function_name
  authorization_type = "NONE"
}

# A public function URL needs both statements (since October 2025): the URL itself, and the invocation behind it, the
# latter only when it comes through the URL. Stated here so they are in the state (the provider may add its own too).
resource "aws_lambda_permission" "url" {
  statement_id           = "credwatch-function-url"
  action                 = "lambda:InvokeFunctionUrl"
  function_name          = aws_lambda_function.importer.function_name
  principal              = "*"
  function_url_auth_type = "NONE"
}

resource "aws_lambda_permission" "invoke" {
  statement_id             = "credwatch-function-url-invoke"
  action                   = "lambda:InvokeFunction"
  function_name            = aws_lambda_function.importer.function_name
  principal                = "*"
  invoked_via_function_url = true
}
