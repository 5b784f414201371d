# The state: in S3, encrypted, with a DynamoDB table as the lock, so two people cannot apply
# at once. It holds secrets (docs/DEPLOY.md lists them): only those who operate the platform
# may read the bucket. Make the bucket and the table once (docs/DEPLOY.md, "Bootstrap"), fill
# in their names, then uncomment and run `terraform init`.
#
# terraform {
#   backend "s3" {
#     bucket         = "emporium-terraform-state-ACCOUNT_ID"
#     key            = "production/terraform.tfstate"
#     region         = "eu-west-1"
#     encrypt        = true
#     kms_key_id     = "alias/emporium-terraform-state"
#     dynamodb_table = "emporium-terraform-locks"
#   }
# }
