CREATE TABLE "slack_installations" (
	"install_key" text PRIMARY KEY NOT NULL,
	"enterprise_id" text,
	"team_id" text,
	"is_enterprise_install" boolean DEFAULT false NOT NULL,
	"app_id" text,
	"bot_user_id" text,
	"bot_id" text,
	"bot_token" text NOT NULL,
	"bot_refresh_token" text,
	"bot_token_expires_at" timestamp with time zone,
	"bot_scopes" text[] DEFAULT '{}'::text[] NOT NULL,
	"installer_user_id" text,
	"installation" jsonb NOT NULL,
	"installed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"uninstalled_at" timestamp with time zone
);
--> statement-breakpoint
CREATE INDEX "slack_installations_team" ON "slack_installations" USING btree ("team_id");