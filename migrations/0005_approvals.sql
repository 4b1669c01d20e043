ALTER TABLE `approval` ADD `request_key` text;--> statement-breakpoint
ALTER TABLE `approval` ADD `gate_request_id` text;--> statement-breakpoint
ALTER TABLE `approval` ADD `consumed_at` integer;--> statement-breakpoint
ALTER TABLE `approval` ADD `expires_at` integer;--> statement-breakpoint
CREATE INDEX `approval_request_idx` ON `approval` (`principal_id`,`request_key`);--> statement-breakpoint
CREATE INDEX `approval_pending_expiry_idx` ON `approval` (`status`,`expires_at`);