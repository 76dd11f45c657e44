/**
 * The React context that carries the app's {@link RealtimeClient} to the hooks.
 */
import { createContext, createElement, type ReactNode, useContext } from 'react';
import type { RealtimeClient, RealtimeSchema } from '../types.js';

/** The client of the nearest {@link RealtimeProvider}; `null` outside one. */
const RealtimeContext = createContext<RealtimeClient | null>(null);
RealtimeContext.displayName = 'RealtimeContext';

/** Props of {@link RealtimeProvider}. */
export interface RealtimeProviderProps<S extends RealtimeSchema = RealtimeSchema> {
  /** The client the hooks below use. Create it once (module scope, or a ref/state of the app's root), not in
   * a render: a new client per render would reconnect every time. */
  client: RealtimeClient<S>;
  children?: ReactNode;
}

/**
 * Makes a client available to {@link useRealtime} and the other hooks below it.
 *
 * The provider only passes the client down: it does **not** create, connect or close it. The app owns the
 * client's lifetime (create it with `createRealtimeClient`, call `client.close()` on sign-out), so the same
 * connection can outlive remounts of the tree (and React StrictMode's double effects), and non-React code
 * can use it too.
 *
 * @example
 * const client = createRealtimeClient<MyApp>({ url, getToken });
 *
 * createRoot(root).render(
 *   <RealtimeProvider client={client}>
 *     <App />
 *   </RealtimeProvider>,
 * );
 */
export function RealtimeProvider<S extends RealtimeSchema = RealtimeSchema>({
  client,
  children,
}: RealtimeProviderProps<S>): ReactNode {
  // `Context.Provider` rather than React 19's `<Context value>`: the peer range starts at React 18.
  return createElement(RealtimeContext.Provider, { value: client as unknown as RealtimeClient }, children);
}

/**
 * The client of the nearest {@link RealtimeProvider}.
 *
 * Pass the app's schema map to get it typed (the provider cannot carry the type through context):
 * `useRealtime<MyApp>()`.
 *
 * @throws Error when called outside a `RealtimeProvider`.
 * @example
 * const client = useRealtime<MyApp>();
 * const onPing = () => client.ping().then((ms) => console.log(`${ms} ms`));
 */
export function useRealtime<S extends RealtimeSchema = RealtimeSchema>(): RealtimeClient<S> {
  const client = useContext(RealtimeContext);
  if (client === null) {
    throw new Error(
      'useRealtime() (and every @viba-realtime/client/react hook) must be called inside a <RealtimeProvider client={...}>.',
    );
  }
  return client as unknown as RealtimeClient<S>;
}
