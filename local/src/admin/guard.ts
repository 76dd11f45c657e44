/**
 * Who may use the console and its admin API. The API can disconnect anyone, mint tokens and speak as any user,
 * so it answers only:
 *
 * - a peer on this machine (the TCP peer address is loopback), unless the emulator was started with
 *   `console: { allowRemote: true }` / `--console-remote`. This holds whatever address the emulator listens
 *   on: with `--host 0.0.0.0` the console stays reachable from this machine and from nowhere else;
 * - a request whose `Host` is a loopback name or address (`localhost`, `127.x.x.x`, `[::1]`), which defeats
 *   DNS rebinding: a page of `evil.example` that re-resolves its name to 127.0.0.1 still sends
 *   `Host: evil.example` (skipped with `allowRemote`, where the host is the machine's network name);
 * - from a browser, only the console's own origin: an `Origin` header must be `http://{Host}`, and a
 *   `Sec-Fetch-Site` header must be `same-origin` or `none`. A page on another site, or on another port of this
 *   machine (`same-site` to the browser), cannot POST actions or open the event stream (a WebSocket is not
 *   bound by CORS, so its `Origin` is the only defence). Requests without these headers are not from a web page
 *   (curl, tests, Node) and pass. State-changing requests must also be `application/json`, which a browser
 *   never sends cross-origin without a preflight, and the API answers no preflight.
 *
 * The console page itself (a navigation) needs only the first two.
 */
import type { IncomingMessage } from 'node:http';
import { isLoopbackHost } from '../loopback.js';

/** How a request is checked. */
export interface AdminAccessOptions {
  /** Serve peers beyond this machine, any `Host`. Same-origin checks stay on. */
  allowRemote: boolean;
}

/** Why a request was refused (answered 403). */
export interface AdminRefusal {
  message: string;
}

/** The hostname of a `Host` header value, or undefined when it is not one. */
export function hostnameOf(host: string | undefined): string | undefined {
  // `Host: evil.example/x@127.0.0.1` would parse to another host than it names: not a host header.
  if (!host || /[/@?#\\\s]/.test(host)) return undefined;
  try {
    return new URL(`http://${host}`).hostname;
  } catch {
    return undefined;
  }
}

/**
 * Checks the peer and the `Host` header: the console page and everything under `/_admin/`.
 * @returns undefined when allowed
 */
export function checkPeer(req: IncomingMessage, options: AdminAccessOptions): AdminRefusal | undefined {
  if (options.allowRemote) return undefined;
  if (!isLoopbackHost(req.socket.remoteAddress ?? '')) {
    return {
      message:
        'The emulator console answers this machine only. Start the emulator with --console-remote to open it to the network.',
    };
  }
  const hostname = hostnameOf(req.headers.host);
  if (hostname === undefined || !isLoopbackHost(hostname)) {
    return {
      message: `The console answers requests for a loopback host (localhost, 127.0.0.1, [::1]), not "${req.headers.host ?? ''}".`,
    };
  }
  return undefined;
}

/**
 * Checks a request of the API or the event stream: {@link checkPeer}, then that a browser sent it from the
 * console's own origin, and for a method that changes state, that it is JSON.
 * @returns undefined when allowed
 */
export function checkApiRequest(req: IncomingMessage, options: AdminAccessOptions): AdminRefusal | undefined {
  const peer = checkPeer(req, options);
  if (peer) return peer;
  const site = req.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== 'same-origin' && site !== 'none') {
    return { message: `The admin API answers the console's own pages only (Sec-Fetch-Site: ${site}).` };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && origin !== `http://${req.headers.host ?? ''}`) {
    return { message: `The admin API answers the console's own origin only, not ${origin}.` };
  }
  const method = req.method ?? 'GET';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/json') return { message: 'Send actions as application/json.' };
  }
  return undefined;
}
