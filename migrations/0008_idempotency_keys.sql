CREATE TABLE `idempotency_key` (
	`scope` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` blob NOT NULL,
	`status` integer,
	`content_type` text,
	`body` blob,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`scope`, `key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_key_created_idx` ON `idempotency_key` (`created_at`);