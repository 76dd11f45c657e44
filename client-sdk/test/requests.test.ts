/** Unit test of request/answer matching (pure logic): which frames may answer a pending request. */
import type { ClientFrame } from '@viba-realtime/protocol';
import { describe, expect, it } from 'vitest';
import { RequestQueue } from '../src/internal/requests.js';

function queue() {
  const written: ClientFrame[] = [];
  let open = true;
  let closed = false;
  const requests = new RequestQueue({
    timeoutMs: 60_000,
    maxQueued: 10,
    write: (frame) => {
      if (!open) throw new Error('socket closing');
      written.push(frame);
    },
    isOpen: () => open,
    isClosed: () => closed,
  });
  return {
    requests,
    written,
    setOpen: (value: boolean) => {
      open = value;
    },
    close: () => {
      closed = true;
      requests.close();
    },
  };
}

describe('RequestQueue', () => {
  it('never takes a chat frame for the answer to a send with the same client id (another user may use it)', async () => {
    const { requests } = queue();
    const pending = requests.request({ action: 'send', room: 'r', id: 'msg-1', body: { text: 'mine' } });
    const foreign = { type: 'chat', id: 'x', room: 'r', from: 'bob', seq: 1, ts: 1, body: {}, ref: 'msg-1' } as const;
    expect(requests.answer(foreign)).toBe(false);
    expect(requests.answer({ type: 'ack', action: 'send', ref: 'msg-1', id: 'y', seq: 2, ts: 2 })).toBe(true);
    await expect(pending).resolves.toMatchObject({ id: 'y', seq: 2 });
  });

  it('holds a request answered token_expired and sends it again after the reconnect', async () => {
    const { requests, written } = queue();
    const pending = requests.request({ action: 'history', room: 'r', id: 'h1' });
    requests.answer({ type: 'error', code: 'token_expired', message: 'expired', ref: 'h1' });
    requests.disconnected();
    requests.flush();
    expect(written.filter((f) => f.id === 'h1')).toHaveLength(2);
    requests.answer({ type: 'history', ref: 'h1', room: 'r', messages: [] });
    await expect(pending).resolves.toMatchObject({ type: 'history' });
  });

  it('fails a request that may not wait when the socket is closing, instead of sending it later', async () => {
    const { requests, setOpen, written } = queue();
    setOpen(true);
    const write = requests.request({ action: 'ping', id: 'p1' }, { queue: false, resend: false });
    expect(written).toHaveLength(1);
    setOpen(false);
    requests.disconnected();
    await expect(write).rejects.toMatchObject({ code: 'connection_failed' });
  });

  it('refuses new requests once the client is closed', async () => {
    const { requests, close } = queue();
    close();
    await expect(requests.request({ action: 'ping' })).rejects.toMatchObject({ code: 'client_closed' });
  });
});
