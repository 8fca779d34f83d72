export { startFakeSlack, type FakeSlackServer, type FakeSlackServerOptions } from './server.ts';
export { SlackDriver, signSlackRequest, type SendOptions, type SentEvent, type SlackResponse } from './driver.ts';
export { FakeWorkspace, SlackError, DEFAULT_SCOPES, type FakeChannel, type FakeFile, type FakeMessage, type FakeSlackOptions, type FakeUser, type FakeView } from './model.ts';
export { publicFile, publicMessage } from './methods.ts';
export { AUTHORIZE_URL, FakeOAuth, type Approval, type Grant } from './oauth.ts';
export { FakeSocketMode, newEnvelopeId, type Envelope, type EnvelopeType, type PushOptions, type SocketAck } from './socket-mode.ts';

import type { FakeWorkspace } from './model.ts';

/** The cast most tests use: an admin (ana), a member (bo), a public channel the bot is in. */
export function seedWorkspace(ws: FakeWorkspace) {
  const ana = ws.addUser({ id: 'U0ANA', name: 'ana', realName: 'Ana Admin', isAdmin: true });
  const bo = ws.addUser({ id: 'U0BO', name: 'bo', realName: 'Bo Member' });
  const cy = ws.addUser({ id: 'U0CY', name: 'cy', realName: 'Cy Member' });
  const general = ws.addChannel({ id: 'C0GENERAL', name: 'general' });
  const secret = ws.addChannel({ id: 'C0SECRET', name: 'secret', isPrivate: true, botIsMember: false });
  return { ana, bo, cy, general, secret };
}
