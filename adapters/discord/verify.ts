import { PermissionFlagsBits, type BaseInteraction } from 'discord.js';
import type { MemberRef, TeamRef } from '../../src/teams.ts';
import type { ReactionEvent } from './parse.ts';

/**
 * Who may do what. The gateway itself is authenticated (our token, TLS), so "verify" here is about
 * people: which team an interaction bills, whether DMs are served, whether a caller holds Manage Server
 * (checked on every admin call, since server admins can override a command's default permissions), and
 * which reactions are worth a database read.
 */
export interface Caller {
  team: TeamRef;
  member: MemberRef;
  userId: string;
  inGuild: boolean;
}

export const REROLL_EMOJI = '🔁';

export function displayName(user: { globalName: string | null; username: string }): string {
  return user.globalName ?? user.username;
}

/** A guild bills its team; a DM bills the member's personal team, and only when DMs are allowed. */
export function callerOf(interaction: BaseInteraction, allowDms: boolean): Caller | { refusal: string } {
  const user = interaction.user;
  const member: MemberRef = { externalId: user.id, displayName: displayName(user) };
  if (interaction.guildId) {
    const name = interaction.guild?.name;
    return { team: { platform: 'discord', externalId: interaction.guildId, ...(name ? { name } : {}) }, member, userId: user.id, inGuild: true };
  }
  if (!allowDms) return { refusal: 'I only make clips in servers. Use /dream in a channel of a server I am in.' };
  return { team: personalTeam(user.id, displayName(user)), member, userId: user.id, inGuild: false };
}

export function personalTeam(userId: string, name?: string): TeamRef {
  return { platform: 'discord', externalId: `user:${userId}`, ...(name ? { name: `${name} (personal)` } : {}) };
}

/** Manage Server (or Administrator, which implies it), from the member's permissions in this interaction. */
export function isServerAdmin(interaction: BaseInteraction): boolean {
  return interaction.inGuild() && (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild, true) ?? false);
}

export function canDelete(interaction: BaseInteraction, requesterId: string | undefined): boolean {
  return interaction.user.id === requesterId || isServerAdmin(interaction);
}

/** 🔁 from a person on one of our messages; bots (ourselves included) and other emoji are ignored. */
export function wantsReroll(event: ReactionEvent, botUserId: string, allowDms: boolean): boolean {
  if (event.emoji !== REROLL_EMOJI) return false;
  if (event.userIsBot || event.userId === botUserId) return false;
  if (event.messageAuthorId && event.messageAuthorId !== botUserId) return false;
  if (!event.guildId && !allowDms) return false;
  return true;
}
