CREATE TABLE `account` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`account_id` text NOT NULL,
	`provider_id` text NOT NULL,
	`access_token` text,
	`refresh_token` text,
	`access_token_expires_at` integer,
	`refresh_token_expires_at` integer,
	`scope` text,
	`id_token` text,
	`password` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `account_user_idx` ON `account` (`user_id`);--> statement-breakpoint
CREATE TABLE `agent` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`creator_principal_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`system_prompt` text,
	`context_config` text,
	`initial_state` text,
	`model_config` text,
	`capabilities` text,
	`credential_requirements` text,
	`grant_requirements` text,
	`current_version` text DEFAULT '1' NOT NULL,
	`status` text DEFAULT 'deployed' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`creator_principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `agent_tenant_created_idx` ON `agent` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `agent_creator_idx` ON `agent` (`creator_principal_id`);--> statement-breakpoint
CREATE TABLE `agent_asset` (
	`id` text PRIMARY KEY NOT NULL,
	`agent_id` text NOT NULL,
	`asset_id` text NOT NULL,
	`ref` text DEFAULT 'refs/heads/main' NOT NULL,
	`access_mode` text DEFAULT 'read-only' NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`asset_id`) REFERENCES `asset`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `agent_asset_agent_asset_uq` ON `agent_asset` (`agent_id`,`asset_id`);--> statement-breakpoint
CREATE INDEX `agent_asset_asset_idx` ON `agent_asset` (`asset_id`);--> statement-breakpoint
CREATE TABLE `agent_instance` (
	`id` text PRIMARY KEY NOT NULL,
	`agent_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`principal_id` text NOT NULL,
	`address` text NOT NULL,
	`version_id` text,
	`session_id` text,
	`status` text DEFAULT 'deployed' NOT NULL,
	`sidecar_id` text,
	`wallet_id` text,
	`public_key` text,
	`kernel_id` text,
	`stop_reason` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`ended_at` integer,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`version_id`) REFERENCES `agent_version`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`session_id`) REFERENCES `agent_session`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`sidecar_id`) REFERENCES `sidecar`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`wallet_id`) REFERENCES `wallet`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `agent_instance_address_unique` ON `agent_instance` (`address`);--> statement-breakpoint
CREATE INDEX `agent_instance_tenant_created_idx` ON `agent_instance` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `agent_instance_agent_idx` ON `agent_instance` (`agent_id`);--> statement-breakpoint
CREATE INDEX `agent_instance_sidecar_idx` ON `agent_instance` (`sidecar_id`);--> statement-breakpoint
CREATE INDEX `agent_instance_principal_idx` ON `agent_instance` (`principal_id`);--> statement-breakpoint
CREATE TABLE `agent_role` (
	`agent_id` text NOT NULL,
	`role_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`agent_id`, `role_id`),
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`role_id`) REFERENCES `role`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `agent_role_role_idx` ON `agent_role` (`role_id`);--> statement-breakpoint
CREATE TABLE `agent_session` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`agent_id` text NOT NULL,
	`principal_id` text NOT NULL,
	`status` text DEFAULT 'active' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`ended_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `agent_session_principal_idx` ON `agent_session` (`principal_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `agent_session_agent_idx` ON `agent_session` (`agent_id`);--> statement-breakpoint
CREATE TABLE `agent_version` (
	`id` text PRIMARY KEY NOT NULL,
	`agent_id` text NOT NULL,
	`version` text NOT NULL,
	`status` text DEFAULT 'active' NOT NULL,
	`snapshot` text,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `agent_version_agent_version_uq` ON `agent_version` (`agent_id`,`version`);--> statement-breakpoint
CREATE INDEX `agent_version_agent_created_idx` ON `agent_version` (`agent_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `approval` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`principal_id` text NOT NULL,
	`agent_id` text NOT NULL,
	`instance_id` text,
	`session_id` text,
	`resource` text NOT NULL,
	`action` text NOT NULL,
	`context` text,
	`status` text DEFAULT 'pending' NOT NULL,
	`scope` text,
	`resolved_by_principal_id` text,
	`message` text,
	`created_at` integer NOT NULL,
	`resolved_at` integer,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`instance_id`) REFERENCES `agent_instance`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`session_id`) REFERENCES `agent_session`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`resolved_by_principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `approval_tenant_created_idx` ON `approval` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `approval_instance_idx` ON `approval` (`instance_id`);--> statement-breakpoint
CREATE TABLE `asset` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`name` text NOT NULL,
	`display_name` text,
	`creator_principal_id` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`creator_principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `asset_tenant_kind_name_uq` ON `asset` (`tenant_id`,`kind`,`name`);--> statement-breakpoint
CREATE INDEX `asset_tenant_created_idx` ON `asset` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `credential` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`principal_id` text,
	`provider_id` text NOT NULL,
	`oauth_client_id` text,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`description` text,
	`secret_ciphertext` blob NOT NULL,
	`refresh_secret_ciphertext` blob,
	`scopes` text,
	`expires_at` integer,
	`status` text DEFAULT 'active' NOT NULL,
	`metadata` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`provider_id`) REFERENCES `provider`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`oauth_client_id`) REFERENCES `oauth_client`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE UNIQUE INDEX `credential_tenant_name_uq` ON `credential` (`tenant_id`,`name`);--> statement-breakpoint
CREATE INDEX `credential_provider_idx` ON `credential` (`provider_id`);--> statement-breakpoint
CREATE INDEX `credential_tenant_created_idx` ON `credential` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `federation_trust` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`target_tenant_id` text NOT NULL,
	`direction` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`target_tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `federation_trust_pair_uq` ON `federation_trust` (`tenant_id`,`target_tenant_id`);--> statement-breakpoint
CREATE INDEX `federation_trust_target_idx` ON `federation_trust` (`target_tenant_id`);--> statement-breakpoint
CREATE TABLE `git_token` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text,
	`user_id` text NOT NULL,
	`principal_id` text,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`token_hash_sha256` blob NOT NULL,
	`resource` text NOT NULL,
	`ref_pattern` text NOT NULL,
	`actions` text NOT NULL,
	`expires_at` integer NOT NULL,
	`revoked_at` integer,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `git_token_token_hash_sha256_unique` ON `git_token` (`token_hash_sha256`);--> statement-breakpoint
CREATE UNIQUE INDEX `git_token_user_name_active_uq` ON `git_token` (`user_id`,`name`) WHERE "git_token"."revoked_at" IS NULL;--> statement-breakpoint
CREATE INDEX `git_token_user_created_idx` ON `git_token` (`user_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `git_token_tenant_created_idx` ON `git_token` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `grant` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`role_id` text,
	`principal_id` text,
	`resource` text NOT NULL,
	`action` text NOT NULL,
	`effect` text NOT NULL,
	`conditions` text,
	`origin` text NOT NULL,
	`expires_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`role_id`) REFERENCES `role`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `grant_principal_idx` ON `grant` (`principal_id`);--> statement-breakpoint
CREATE INDEX `grant_role_idx` ON `grant` (`role_id`);--> statement-breakpoint
CREATE INDEX `grant_tenant_created_idx` ON `grant` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `inference_turn` (
	`id` text PRIMARY KEY NOT NULL,
	`session_id` text NOT NULL,
	`instance_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`model` text NOT NULL,
	`status` text DEFAULT 'running' NOT NULL,
	`input_tokens` integer DEFAULT 0 NOT NULL,
	`output_tokens` integer DEFAULT 0 NOT NULL,
	`cost` text DEFAULT '0' NOT NULL,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	FOREIGN KEY (`session_id`) REFERENCES `agent_session`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`instance_id`) REFERENCES `agent_instance`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `inference_turn_instance_started_idx` ON `inference_turn` (`instance_id`,`started_at`,`id`);--> statement-breakpoint
CREATE TABLE `oauth_client` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`provider_id` text NOT NULL,
	`name` text NOT NULL,
	`client_id` text NOT NULL,
	`client_secret_ciphertext` blob NOT NULL,
	`redirect_uris` text,
	`default_scopes` text,
	`metadata` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`provider_id`) REFERENCES `provider`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `oauth_client_tenant_provider_uq` ON `oauth_client` (`tenant_id`,`provider_id`);--> statement-breakpoint
CREATE INDEX `oauth_client_tenant_created_idx` ON `oauth_client` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `offering` (
	`id` text PRIMARY KEY NOT NULL,
	`agent_id` text NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`pricing` text,
	`schema` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `offering_tenant_created_idx` ON `offering` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `offering_agent_idx` ON `offering` (`agent_id`);--> statement-breakpoint
CREATE TABLE `principal` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`kind` text NOT NULL,
	`ref_id` text NOT NULL,
	`status` text DEFAULT 'active' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `principal_tenant_kind_ref_uq` ON `principal` (`tenant_id`,`kind`,`ref_id`);--> statement-breakpoint
CREATE INDEX `principal_ref_idx` ON `principal` (`ref_id`);--> statement-breakpoint
CREATE INDEX `principal_tenant_created_idx` ON `principal` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `principal_role` (
	`principal_id` text NOT NULL,
	`role_id` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`principal_id`, `role_id`),
	FOREIGN KEY (`principal_id`) REFERENCES `principal`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`role_id`) REFERENCES `role`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `principal_role_role_idx` ON `principal_role` (`role_id`);--> statement-breakpoint
CREATE TABLE `provider` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`plugin` text NOT NULL,
	`authorization_url` text,
	`token_url` text,
	`user_info_url` text,
	`scopes` text,
	`metadata` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `provider_tenant_name_uq` ON `provider` (`tenant_id`,`name`);--> statement-breakpoint
CREATE INDEX `provider_tenant_created_idx` ON `provider` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `role` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text,
	`is_system` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `role_tenant_name_uq` ON `role` (`tenant_id`,`name`);--> statement-breakpoint
CREATE INDEX `role_tenant_created_idx` ON `role` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `session` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`token` text NOT NULL,
	`expires_at` integer NOT NULL,
	`ip_address` text,
	`user_agent` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`user_id`) REFERENCES `user`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `session_token_unique` ON `session` (`token`);--> statement-breakpoint
CREATE INDEX `session_user_idx` ON `session` (`user_id`);--> statement-breakpoint
CREATE TABLE `session_asset` (
	`instance_id` text NOT NULL,
	`agent_asset_id` text NOT NULL,
	`mount_path` text NOT NULL,
	`asset_pack_sha` text NOT NULL,
	`source_commit_sha` text NOT NULL,
	`materialized_at` integer NOT NULL,
	PRIMARY KEY(`instance_id`, `agent_asset_id`),
	FOREIGN KEY (`instance_id`) REFERENCES `agent_instance`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`agent_asset_id`) REFERENCES `agent_asset`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `session_asset_pack_sha_idx` ON `session_asset` (`asset_pack_sha`);--> statement-breakpoint
CREATE TABLE `session_mail` (
	`id` text PRIMARY KEY NOT NULL,
	`session_id` text NOT NULL,
	`instance_id` text,
	`tenant_id` text NOT NULL,
	`direction` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`message_id` text,
	`raw` blob,
	`raw_key` text,
	`size` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`session_id`) REFERENCES `agent_session`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`instance_id`) REFERENCES `agent_instance`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `session_mail_instance_created_idx` ON `session_mail` (`instance_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `sidecar` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`url` text,
	`secret_hash_sha256` blob NOT NULL,
	`status` text DEFAULT 'offline' NOT NULL,
	`capacity` integer DEFAULT 16 NOT NULL,
	`last_heartbeat` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sidecar_secret_hash_sha256_unique` ON `sidecar` (`secret_hash_sha256`);--> statement-breakpoint
CREATE UNIQUE INDEX `sidecar_tenant_name_uq` ON `sidecar` (`tenant_id`,`name`);--> statement-breakpoint
CREATE INDEX `sidecar_tenant_created_idx` ON `sidecar` (`tenant_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `tenant` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`slug` text NOT NULL,
	`domain` text NOT NULL,
	`parent_id` text,
	`config` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`parent_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `tenant_slug_unique` ON `tenant` (`slug`);--> statement-breakpoint
CREATE UNIQUE INDEX `tenant_domain_unique` ON `tenant` (`domain`);--> statement-breakpoint
CREATE INDEX `tenant_parent_idx` ON `tenant` (`parent_id`);--> statement-breakpoint
CREATE TABLE `transaction` (
	`id` text PRIMARY KEY NOT NULL,
	`wallet_id` text NOT NULL,
	`agent_id` text,
	`direction` text NOT NULL,
	`amount` text NOT NULL,
	`currency` text NOT NULL,
	`recipient_id` text,
	`sender_id` text,
	`request_id` text,
	`status` text DEFAULT 'pending' NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`wallet_id`) REFERENCES `wallet`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`agent_id`) REFERENCES `agent`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `transaction_wallet_created_idx` ON `transaction` (`wallet_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `turn_part` (
	`id` text PRIMARY KEY NOT NULL,
	`turn_id` text NOT NULL,
	`session_id` text NOT NULL,
	`type` text NOT NULL,
	`content` text,
	`metadata` text,
	`ordinal` integer NOT NULL,
	FOREIGN KEY (`turn_id`) REFERENCES `inference_turn`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`session_id`) REFERENCES `agent_session`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `turn_part_turn_ordinal_uq` ON `turn_part` (`turn_id`,`ordinal`);--> statement-breakpoint
CREATE TABLE `user` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`email` text NOT NULL,
	`email_verified` integer DEFAULT false NOT NULL,
	`image` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `user_email_unique` ON `user` (`email`);--> statement-breakpoint
CREATE TABLE `verification` (
	`id` text PRIMARY KEY NOT NULL,
	`identifier` text NOT NULL,
	`value` text NOT NULL,
	`expires_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `verification_identifier_idx` ON `verification` (`identifier`);--> statement-breakpoint
CREATE TABLE `wallet` (
	`id` text PRIMARY KEY NOT NULL,
	`tenant_id` text NOT NULL,
	`name` text NOT NULL,
	`backend_type` text NOT NULL,
	`currency` text NOT NULL,
	`balance` text DEFAULT '0' NOT NULL,
	`config` text,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`tenant_id`) REFERENCES `tenant`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `wallet_tenant_created_idx` ON `wallet` (`tenant_id`,`created_at`,`id`);