CREATE TABLE `audit_log` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`action` text NOT NULL,
	`resource_type` text NOT NULL,
	`resource_id` text NOT NULL,
	`actor_principal_id` text,
	`actor_user_id` text,
	`changes` text,
	`ip` text,
	`user_agent` text,
	`request_id` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `audit_log_tenant_created_idx` ON `audit_log` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `audit_log_tenant_resource_idx` ON `audit_log` (`tenant_id`,`resource_type`,`resource_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `audit_log_tenant_actor_idx` ON `audit_log` (`tenant_id`,`actor_principal_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `audit_log_tenant_action_idx` ON `audit_log` (`tenant_id`,`action`,`created_at`);