terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # `state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"` on aws_cloudwatch_event_rule needs a 5.x provider
      # recent enough to have the `state` argument.
      version = ">= 5.50, < 7.0"
    }
  }
}
