/**
 * Pointing the publisher at the local emulator (`npm start`) by configuration only: the emulator serves its
 * publisher settings at `GET /dev/config` (loopback only), the same settings the CDK construct gives a
 * backend in AWS.
 */
import { PublisherConfigError } from './errors.js';
import type { PublisherConfig } from './publisher.js';

/** The emulator's default HTTP URL. */
export const LOCAL_EMULATOR_URL = 'http://127.0.0.1:4000';

/**
 * Asks a running emulator for its publisher settings.
 * @throws {PublisherConfigError} the emulator is not running there, or answers something else
 * @example
 * const realtime = createPublisher(await fetchLocalPublisherConfig());
 */
export async function fetchLocalPublisherConfig(url: string = LOCAL_EMULATOR_URL): Promise<PublisherConfig> {
  let response: Response;
  try {
    response = await fetch(new URL('/dev/config', url));
  } catch (error) {
    throw new PublisherConfigError(`No emulator answers at ${url}: start it with \`npm start\`.`, { cause: error });
  }
  if (!response.ok) throw new PublisherConfigError(`${url}/dev/config answered ${response.status}.`);
  const config = (await response.json()) as PublisherConfig;
  if (!config.tableName || !config.connectionsEndpoint) {
    throw new PublisherConfigError(`${url}/dev/config is not a publisher configuration.`);
  }
  return config;
}
