/**
 * `npm run notify | announce | send`: the backend publisher from a shell, against a running emulator (found
 * through its `/dev/config`, as any backend finds it locally). Each prints the publisher's result as JSON;
 * a refused input prints the typed error's code and message and exits with 2.
 */
import { parseArgs } from 'node:util';
import {
  createPublisher,
  fetchLocalPublisherConfig,
  type JsonObject,
  type Publisher,
  PublisherConfigError,
  RealtimeError,
} from '@viba-realtime/publisher';

export const PUBLISH_HELP = `notify options:
  --user SUB                recipient (repeat for several)
  --text TEXT | --body JSON the payload: {"text": TEXT} or a JSON object
  --key KEY                 idempotency key (a retry with the same key notifies once)
  --url URL                 emulator HTTP URL (default as for token)

announce options:
  --text TEXT | --body JSON the payload
  --group GROUP             only this Cognito group (default everyone)
  --key KEY                 idempotency key

send options:
  --room ROOM               an existing room
  --text TEXT | --body JSON the payload
  --from SUB                the user the backend speaks for (default "backend")
  --id ID                   client message id (idempotency)
`;

/** A problem the user can fix; printed without a stack trace, exit code 2. */
export class PublishUsageError extends Error {
  override readonly name = 'PublishUsageError';
}

const common = {
  text: { type: 'string' },
  body: { type: 'string' },
  key: { type: 'string' },
  url: { type: 'string' },
} as const;

function payload(values: { text?: string | undefined; body?: string | undefined }): JsonObject {
  if (values.text !== undefined && values.body !== undefined)
    throw new PublishUsageError('Give --text or --body, not both.');
  if (values.text !== undefined) return { text: values.text };
  if (values.body === undefined) throw new PublishUsageError('Give the payload: --text TEXT or --body JSON.');
  try {
    return JSON.parse(values.body) as JsonObject;
  } catch {
    throw new PublishUsageError('--body must be JSON, e.g. --body \'{"title":"hi"}\'.');
  }
}

async function withPublisher<T>(url: string, run: (publisher: Publisher) => Promise<T>): Promise<void> {
  const publisher = createPublisher(await fetchLocalPublisherConfig(url));
  try {
    process.stdout.write(`${JSON.stringify(await run(publisher), null, 2)}\n`);
  } catch (error) {
    if (error instanceof RealtimeError) throw new PublishUsageError(`${error.code}: ${error.message}`);
    throw error;
  } finally {
    publisher.close();
  }
}

/** Runs `notify`, `announce` or `send` with the arguments after the command. */
export async function runPublishCommand(command: 'notify' | 'announce' | 'send', args: string[], url: string) {
  try {
    if (command === 'notify') {
      const { values } = parseArgs({ args, options: { ...common, user: { type: 'string', multiple: true } } });
      if (!values.user?.length) throw new PublishUsageError('Give at least one --user SUB.');
      const users = values.user;
      const body = payload(values);
      return await withPublisher(values.url ?? url, (p) =>
        p.notify(users, body, values.key === undefined ? {} : { key: values.key }),
      );
    }
    if (command === 'announce') {
      const { values } = parseArgs({ args, options: { ...common, group: { type: 'string' } } });
      const body = payload(values);
      return await withPublisher(values.url ?? url, (p) =>
        p.announce(body, {
          ...(values.group === undefined ? {} : { group: values.group }),
          ...(values.key === undefined ? {} : { key: values.key }),
        }),
      );
    }
    const { values } = parseArgs({
      args,
      options: { ...common, room: { type: 'string' }, from: { type: 'string' }, id: { type: 'string' } },
    });
    if (values.room === undefined) throw new PublishUsageError('Give --room ROOM.');
    const room = values.room;
    const body = payload(values);
    return await withPublisher(values.url ?? url, (p) =>
      p.sendToRoom(room, body, {
        ...(values.from === undefined ? {} : { from: values.from }),
        ...(values.id === undefined ? {} : { id: values.id }),
      }),
    );
  } catch (error) {
    if (error instanceof PublisherConfigError) throw new PublishUsageError(error.message);
    throw error;
  }
}
