import { describe, expect, it } from 'vitest';
import { clientIdFor, IOT_LIMITS, isClientIdOf, parseTopic, topics } from '../src/index.js';

const SUB = '6f1c2b9e-0d4a-4c1e-9a57-3b2f1e0c9d11';

describe('topics', () => {
  it('builds and parses every topic of ours back to its parameters', () => {
    expect(parseTopic(topics.roomSend('lobby'))).toEqual({ kind: 'roomSend', room: 'lobby' });
    expect(parseTopic(topics.requests(SUB))).toEqual({ kind: 'requests', sub: SUB });
    expect(parseTopic(topics.responses(SUB))).toEqual({ kind: 'responses', sub: SUB });
    expect(parseTopic(topics.userRoom(SUB, 'team.7'))).toEqual({ kind: 'userRoom', sub: SUB, room: 'team.7' });
    expect(parseTopic(topics.inbox(SUB))).toEqual({ kind: 'inbox', sub: SUB });
    expect(parseTopic(topics.announcements)).toEqual({ kind: 'announcements' });
    expect(parseTopic(topics.groupAnnouncements('admin'))).toEqual({ kind: 'groupAnnouncements', group: 'admin' });
  });

  it.each([
    'rt/rooms/lobby',
    'rt/rooms/has space/send',
    'rt/rooms/+/send',
    'rt/users/+/inbox',
    'rt/users/a/b/inbox',
    'rt/announcements/groups/',
    'other/rooms/lobby/send',
    `rt/rooms/${'r'.repeat(65)}/send`,
  ])('does not recognise %s', (topic) => {
    expect(parseTopic(topic)).toBeUndefined();
  });

  it('keeps the longest topic inside IoT Core limits', () => {
    const longest = topics.userRoom('s'.repeat(128), 'r'.repeat(64));
    expect(Buffer.byteLength(longest)).toBeLessThanOrEqual(IOT_LIMITS.maxTopicBytes);
    expect(longest.split('/').length - 1).toBeLessThanOrEqual(IOT_LIMITS.maxTopicSlashes);
  });

  it('ties client ids to their user', () => {
    expect(isClientIdOf(SUB, clientIdFor(SUB))).toBe(true);
    expect(isClientIdOf(SUB, clientIdFor(SUB, 'phone'))).toBe(true);
    expect(isClientIdOf(SUB, `${SUB}phone`)).toBe(false);
    expect(isClientIdOf(SUB, `${SUB}-phone`)).toBe(false);
    // With a separator subs may contain, user "alice" could claim user "alice-bob"'s client id.
    expect(isClientIdOf('alice', 'alice-bob')).toBe(false);
    expect(isClientIdOf('alice', clientIdFor('alice', 'bob'))).toBe(true);
    expect(isClientIdOf(SUB, 'someone-else')).toBe(false);
    expect(isClientIdOf(SUB, clientIdFor(SUB, 'x'.repeat(IOT_LIMITS.maxClientIdBytes)))).toBe(false);
  });
});
