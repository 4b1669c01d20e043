CREATE TABLE `git_pack` (
	`id` text NOT NULL,
	`repository_id` text NOT NULL,
	`object_count` integer NOT NULL,
	`pack_bytes` integer NOT NULL,
	`index_bytes` integer NOT NULL,
	`duplicate_objects` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`repository_id`, `id`),
	FOREIGN KEY (`repository_id`) REFERENCES `git_repository`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `git_pack_repository_created_idx` ON `git_pack` (`repository_id`,`created_at`);--> statement-breakpoint
CREATE TABLE `git_ref` (
	`repository_id` text NOT NULL,
	`name` text NOT NULL,
	`oid` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`repository_id`, `name`),
	FOREIGN KEY (`repository_id`) REFERENCES `git_repository`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `git_repository` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`head` text DEFAULT 'refs/heads/main' NOT NULL,
	`lease_token` text,
	`lease_expires_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `git_repository_tenant_idx` ON `git_repository` (`tenant_id`);