ALTER TABLE `inference_turn` ADD `cache_read_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `inference_turn` ADD `cache_write_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `inference_turn` ADD `thinking_tokens` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `transaction` ADD `metadata` text;--> statement-breakpoint
ALTER TABLE `wallet` ADD `is_default` integer DEFAULT false NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `wallet_tenant_default_uq` ON `wallet` (`tenant_id`) WHERE "wallet"."is_default" = 1;