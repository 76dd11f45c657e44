// The smallest browser app on the SDK, for any bundler (Vite, webpack, esbuild); against `npm start`.
import { createRealtimeClient } from '@viba-realtime/client';

const url = new URLSearchParams(location.search).get('ws') ?? 'ws://127.0.0.1:4000/local';
const devToken = `${url.replace(/^ws/, 'http').replace(/\/local$/, '')}/dev/token?sub=browser-user`;

const client = createRealtimeClient<{ message: { text: string } }>({
  url,
  getToken: async () => (await (await fetch(devToken)).json()).idToken, // your app: Amplify's fetchAuthSession()
});
const room = client.join('lobby');
room.on('message', (m) => {
  const line = document.createElement('p');
  line.textContent = `${m.from}: ${m.body.text}`;
  document.body.append(line);
});
await room.send({ text: 'hello from the browser' });
