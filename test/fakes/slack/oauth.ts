import { randomBytes } from 'node:crypto';
import { FakeWorkspace, SlackError } from './model.ts';

/**
 * Slack's side of an OAuth v2 install (docs.slack.dev/authentication/installing-with-oauth), for the
 * multi-workspace tests. The browser part, Slack's authorize page, is `approve()`: a member looks at the
 * authorize URL the app redirected to and clicks Allow for a workspace (or, for an org-wide install, its
 * enterprise); Slack then sends the browser back to the app's redirect URL with a `code` and the `state`
 * unchanged. `oauth.v2.access` trades that code, once and within 10 minutes, for the installation: a fresh
 * bot token per install that the fake's Web API then accepts for that workspace (for every workspace of
 * the org when the install is org-wide), answered in the shape the method's docs give.
 */
export interface Grant {
  code: string;
  clientId: string;
  workspace: FakeWorkspace;
  orgWide: boolean;
  userId: string;
  scopes: string[];
  redirectUri: string | null;
  issuedAt: number;
  used: boolean;
}

export interface Approval {
  code: string;
  /** The state parameter, as the app put it in the authorize URL. */
  state: string | null;
  /** Where Slack sends the browser: the authorize URL's redirect_uri (null: the app's configured one). */
  redirectUri: string | null;
}

const CODE_TTL_MS = 10 * 60 * 1000;
export const AUTHORIZE_URL = 'https://slack.com/oauth/v2/authorize';

export class FakeOAuth {
  readonly grants = new Map<string, Grant>();
  /** Tokens revoked by an uninstall: the Web API answers `token_revoked` to them. */
  readonly revoked = new Set<string>();
  /** Every bot token issued, in order (tests check none of them reached a log or the database in the clear). */
  readonly issued: { token: string; teamId: string; enterpriseId?: string; orgWide: boolean }[] = [];

  constructor(
    readonly clientId: string,
    readonly clientSecret: string,
    private readonly workspaces: () => FakeWorkspace[],
    private readonly now: () => number = Date.now,
  ) {}

  /** A member approves the install the authorize URL asks for, on `workspace` (or its whole org). */
  approve(authorizeUrl: string, input: { workspace: FakeWorkspace; user: string; orgWide?: boolean }): Approval {
    const url = new URL(authorizeUrl);
    if (`${url.origin}${url.pathname}` !== AUTHORIZE_URL) throw new Error(`not Slack's authorize URL: ${authorizeUrl}`);
    if (url.searchParams.get('client_id') !== this.clientId) throw new SlackError('invalid_client_id');
    const scopes = (url.searchParams.get('scope') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    if (scopes.length === 0) throw new SlackError('invalid_scope');
    if (input.orgWide && !input.workspace.enterpriseId) throw new Error('an org-wide install needs a workspace in an enterprise');
    input.workspace.user(input.user);
    const code = `${Math.floor(this.now() / 1000)}.${randomBytes(12).toString('hex')}`;
    this.grants.set(code, {
      code, clientId: this.clientId, workspace: input.workspace, orgWide: !!input.orgWide, userId: input.user, scopes,
      redirectUri: url.searchParams.get('redirect_uri'), issuedAt: this.now(), used: false,
    });
    return { code, state: url.searchParams.get('state'), redirectUri: url.searchParams.get('redirect_uri') };
  }

  /** oauth.v2.access: client credentials in the form (or HTTP Basic), the code once; the installation back. */
  exchange(args: Record<string, unknown>, basic: { id: string; secret: string } | null): Record<string, unknown> {
    const clientId = basic?.id ?? (typeof args.client_id === 'string' ? args.client_id : undefined);
    const clientSecret = basic?.secret ?? (typeof args.client_secret === 'string' ? args.client_secret : undefined);
    if (clientId !== this.clientId) throw new SlackError('invalid_client_id');
    if (clientSecret !== this.clientSecret) throw new SlackError('bad_client_secret');
    if (args.grant_type !== undefined && args.grant_type !== 'authorization_code') throw new SlackError('invalid_grant_type');
    const grant = typeof args.code === 'string' ? this.grants.get(args.code) : undefined;
    if (!grant || grant.used || this.now() - grant.issuedAt > CODE_TTL_MS) throw new SlackError('invalid_code');
    if (grant.redirectUri !== null && args.redirect_uri !== grant.redirectUri) throw new SlackError('bad_redirect_uri');
    grant.used = true;

    const ws = grant.workspace;
    const covered = grant.orgWide ? this.workspaces().filter((w) => w.enterpriseId === ws.enterpriseId) : [ws];
    const token = `xoxb-${grant.orgWide ? ws.enterpriseId : ws.teamId}-${randomBytes(12).toString('hex')}`;
    for (const w of covered) {
      w.botToken = token;
      w.tokens.add(token);
      w.scopes = new Set(grant.scopes);
      w.enterpriseInstall = grant.orgWide;
    }
    this.issued.push({ token, teamId: ws.teamId, ...(ws.enterpriseId ? { enterpriseId: ws.enterpriseId } : {}), orgWide: grant.orgWide });
    return {
      access_token: token, token_type: 'bot', scope: grant.scopes.join(','), bot_user_id: ws.botUserId, app_id: ws.appId,
      team: grant.orgWide ? null : { id: ws.teamId, name: ws.teamDomain },
      enterprise: ws.enterpriseId ? { id: ws.enterpriseId, name: `${ws.enterpriseId} org` } : null,
      authed_user: { id: grant.userId },
      is_enterprise_install: grant.orgWide,
    };
  }

  /**
   * The app is uninstalled from `workspace` (from its whole org, if installed org-wide): its tokens stop
   * working (`token_revoked`). `enterpriseInstall` stays as it was, so the app_uninstalled event a driver
   * sends next still describes the installation that went.
   */
  uninstall(workspace: FakeWorkspace): string[] {
    const covered = workspace.enterpriseInstall ? this.workspaces().filter((w) => w.enterpriseId === workspace.enterpriseId && w.enterpriseInstall) : [workspace];
    const tokens = new Set(covered.flatMap((w) => [...w.tokens]));
    for (const w of covered) {
      w.tokens.clear();
      w.botToken = '';
    }
    for (const t of tokens) this.revoked.add(t);
    return [...tokens];
  }
}
