// Two users chat through the SDK against `npm start`; bob also gets a notification from the backend.
import { createRealtimeClient } from '@viba-realtime/client';
import { createPublisher, fetchLocalPublisherConfig } from '@viba-realtime/publisher';
import WebSocket from 'ws';

const base = process.env.VIBA_URL ?? 'http://127.0.0.1:4000'; // the emulator `npm start` runs
const devToken = async (sub: string) => (await (await fetch(`${base}/dev/token?sub=${sub}`)).json()).idToken as string;

interface Chat {
  message: { text: string };
  notification: { title: string };
}
const connect = (sub: string) =>
  createRealtimeClient<Chat>({
    url: `${base.replace(/^http/, 'ws')}/local`,
    getToken: () => devToken(sub), // in your app: Amplify's fetchAuthSession(), see docs/CLIENT.md
    WebSocket, // browsers and React Native have their own; Node 20 needs `ws`
  });

const alice = connect('alice');
const bob = connect('bob');
const lobby = bob.join('lobby');
const heard = new Promise<void>((resolve) =>
  lobby.on('message', (m) => {
    console.log(`bob got #${m.seq} from ${m.from}: ${m.body.text}`);
    resolve();
  }),
);
const notified = new Promise<void>((resolve) =>
  bob.notifications.on('notification', (n) => {
    console.log(`bob was notified: ${n.body.title}`);
    resolve();
  }),
);
await lobby.ready();

const sent = await alice.join('lobby').send({ text: 'hello from the SDK' });
console.log(`alice's message is stored as #${sent.seq}`);

const backend = createPublisher(await fetchLocalPublisherConfig(base));
await backend.notify('bob', { title: 'Your order shipped' });

await Promise.all([heard, notified]);
alice.close();
bob.close();
backend.close();
