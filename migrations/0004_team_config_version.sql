ALTER TABLE "teams" ADD COLUMN "config_version" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "generations_team_active" ON "generations" USING btree ("team_id") WHERE "generations"."state" in ('dispatched','running');--> statement-breakpoint
CREATE INDEX "generations_member_active" ON "generations" USING btree ("member_id") WHERE "generations"."state" in ('dispatched','running');--> statement-breakpoint
-- Admission keeps each team's settings in process memory and writes only while teams.config_version still
-- matches the copy it used (src/team-directory.ts). These triggers bump the version on every change to what
-- it keeps, whichever code path (or hand-written SQL) makes the change.
CREATE OR REPLACE FUNCTION dreambot_teams_config_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.preferences IS DISTINCT FROM OLD.preferences THEN
    NEW.config_version := OLD.config_version + 1;
  END IF;
  RETURN NEW;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER teams_config_version BEFORE UPDATE OF preferences ON teams
FOR EACH ROW EXECUTE FUNCTION dreambot_teams_config_version();
--> statement-breakpoint
-- A blocklist change bumps its team; a platform account moving away (a link) or removed bumps the team it left.
CREATE OR REPLACE FUNCTION dreambot_bump_team_config() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE teams SET config_version = config_version + 1
  WHERE id = CASE WHEN TG_OP = 'INSERT' THEN NEW.team_id ELSE OLD.team_id END;
  RETURN NULL;
END;
$$;
--> statement-breakpoint
CREATE TRIGGER blocklist_config_version AFTER INSERT OR UPDATE OR DELETE ON blocklist
FOR EACH ROW EXECUTE FUNCTION dreambot_bump_team_config();
--> statement-breakpoint
CREATE TRIGGER platform_accounts_config_version AFTER UPDATE OF team_id OR DELETE ON platform_accounts
FOR EACH ROW EXECUTE FUNCTION dreambot_bump_team_config();
--> statement-breakpoint
-- Admission's write no longer aborts itself: a refused item simply writes nothing (src/ledger/admit-hold.ts).
DROP FUNCTION IF EXISTS dreambot_refuse(text, bigint);
