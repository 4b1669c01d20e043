ALTER TABLE `git_ref` ADD `peeled` text;--> statement-breakpoint
ALTER TABLE `git_repository` ADD `sweep_requested_at` integer;