ALTER TABLE `agent_instance` ADD `api_token_sha256` blob;--> statement-breakpoint
CREATE UNIQUE INDEX `agent_instance_api_token_sha256_unique` ON `agent_instance` (`api_token_sha256`);