CREATE TABLE `instance_log` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`agent_id` text NOT NULL,
	`instance_id` text NOT NULL,
	`level` text NOT NULL,
	`source` text NOT NULL,
	`message` text NOT NULL,
	`metadata` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`instance_id`) REFERENCES `agent_instance`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `instance_log_instance_created_idx` ON `instance_log` (`instance_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `instance_log_agent_created_idx` ON `instance_log` (`agent_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `instance_log_created_idx` ON `instance_log` (`created_at`);--> statement-breakpoint
ALTER TABLE `inference_turn` ADD `trace_id` text;--> statement-breakpoint
ALTER TABLE `inference_turn` ADD `parent_span_id` text;--> statement-breakpoint
CREATE INDEX `inference_turn_tenant_started_idx` ON `inference_turn` (`tenant_id`,`started_at`,`id`);--> statement-breakpoint
CREATE INDEX `inference_turn_tenant_trace_idx` ON `inference_turn` (`tenant_id`,`trace_id`);--> statement-breakpoint
ALTER TABLE `turn_part` ADD `created_at` integer;--> statement-breakpoint
-- Turns recorded before traces existed: each is a trace of its own, named after the turn.
UPDATE `inference_turn` SET `trace_id` = substr(`id`, 5) WHERE `trace_id` IS NULL;
