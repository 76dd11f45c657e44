import { describe, expect, it } from 'vitest';
import {
  CLIENT_ACTIONS,
  ERROR_CODES,
  frameRefOf,
  LIMITS,
  parseClientFrame,
  RealtimeError,
  ValidationError,
  WS_ROUTES,
} from '../src/index.js';

function codeOf(raw: string): string | undefined {
  try {
    parseClientFrame(raw);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).code;
  }
}

describe('parseClientFrame', () => {
  it('accepts each action in its documented shape', () => {
    expect(parseClientFrame('{"action":"ping"}')).toEqual({ action: 'ping' });
    expect(parseClientFrame('{"action":"join","room":"lobby","id":"j1","body":{"visibility":"private"}}')).toEqual({
      action: 'join',
      room: 'lobby',
      id: 'j1',
      body: { visibility: 'private' },
    });
    expect(parseClientFrame('{"action":"leave","room":"a.b-c_d"}')).toEqual({ action: 'leave', room: 'a.b-c_d' });
    expect(parseClientFrame('{"action":"send","room":"lobby","id":"c:1","body":{"text":"hi"}}')).toEqual({
      action: 'send',
      room: 'lobby',
      id: 'c:1',
      body: { text: 'hi' },
    });
    expect(parseClientFrame('{"action":"history","room":"lobby","body":{"after":3,"limit":10}}')).toEqual({
      action: 'history',
      room: 'lobby',
      body: { after: 3, limit: 10 },
    });
  });

  it('drops server-owned fields a client tries to set', () => {
    const frame = parseClientFrame('{"action":"send","room":"r","id":"c1","body":{},"from":"mallory","seq":99}');
    expect(frame).not.toHaveProperty('from');
    expect(frame).not.toHaveProperty('seq');
  });

  it.each([
    ['not json', 'bad_request'],
    ['[1,2]', 'bad_request'],
    ['null', 'bad_request'],
    ['{"room":"x"}', 'bad_request'],
    ['{"action":"dance"}', 'unknown_action'],
    ['{"action":"join"}', 'invalid_room'],
    ['{"action":"join","room":""}', 'invalid_room'],
    ['{"action":"join","room":"has space"}', 'invalid_room'],
    [`{"action":"join","room":"${'r'.repeat(65)}"}`, 'invalid_room'],
    ['{"action":"join","room":"r","body":{"visibility":"secret"}}', 'bad_request'],
    ['{"action":"send","room":"r","body":{}}', 'invalid_id'],
    ['{"action":"send","room":"r","id":"has space","body":{}}', 'invalid_id'],
    ['{"action":"send","room":"r","id":"c1"}', 'bad_request'],
    ['{"action":"send","room":"r","id":"c1","body":"text"}', 'bad_request'],
    ['{"action":"history","room":"r","body":{"limit":0}}', 'bad_request'],
    [`{"action":"history","room":"r","body":{"limit":${LIMITS.historyPageMax + 1}}}`, 'bad_request'],
    ['{"action":"history","room":"r","body":{"after":1,"before":5}}', 'bad_request'],
    ['{"action":"history","room":"r","body":{"after":1.5}}', 'bad_request'],
    ['{"action":"send","room":"r","id":"c1","body":{"n":1e400}}', 'bad_request'],
  ])('refuses %s with %s', (raw, code) => {
    expect(codeOf(raw)).toBe(code);
  });

  it('measures the body limit in UTF-8 bytes', () => {
    const overhead = '{"t":""}'.length;
    const fits = { t: 'a'.repeat(LIMITS.maxBodyBytes - overhead) };
    expect(parseClientFrame(JSON.stringify({ action: 'send', room: 'r', id: 'c', body: fits }))).toMatchObject({
      action: 'send',
    });
    // 'é' is two bytes: the same character count is over the limit.
    const over = { t: 'é'.repeat(LIMITS.maxBodyBytes - overhead) };
    let caught: unknown;
    try {
      parseClientFrame(JSON.stringify({ action: 'send', room: 'r', id: 'c', body: over }));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).code).toBe('body_too_large');
    expect((caught as ValidationError).details).toMatchObject({ limit: LIMITS.maxBodyBytes });
  });
});

describe('frameRefOf', () => {
  it('keeps only valid references', () => {
    expect(frameRefOf({ action: 'send', id: 'c1', room: 'lobby' })).toEqual({
      action: 'send',
      ref: 'c1',
      room: 'lobby',
    });
    expect(frameRefOf({ action: 'send', id: 'bad id', room: 'bad room' })).toEqual({ action: 'send' });
    expect(frameRefOf('text')).toEqual({});
  });
});

describe('contract tables', () => {
  it('has one route per client action plus the three special routes', () => {
    expect(WS_ROUTES.map((r) => r.routeKey).sort()).toEqual(
      ['$connect', '$default', '$disconnect', ...CLIENT_ACTIONS].sort(),
    );
    expect(WS_ROUTES.filter((r) => r.authorized).map((r) => r.routeKey)).toEqual(['$connect']);
  });

  it('gives every error class a documented code', () => {
    const error = new RealtimeError('forbidden');
    expect(error.message).toBe(ERROR_CODES.forbidden);
    expect(error.name).toBe('RealtimeError');
  });
});
