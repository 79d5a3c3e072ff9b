terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # secrets_manager_configuration in http_endpoint_configuration and the rule's
      # `state = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"` need a recent 5.x provider.
      version = ">= 5.50, < 7.0"
    }
  }
}
