/**
 * Wiring of the console into a running emulator: the part of `startEmulator` that exists only with
 * `console` on, kept here so the emulator's start-up reads as before.
 */
import type { LogLevel as HandlerLogLevel } from '@viba-realtime/lambdas';
import type { PublisherConfig } from '@viba-realtime/publisher';
import type { Emulator } from '../emulator.js';
import type { EmulatorLogger } from '../log.js';
import { type AdminApi, createAdminApi } from './api.js';
import type { AdjustableClock } from './clock.js';
import type { AdminEventBus } from './events.js';

/** The console of a running emulator (tests read its events and move its clock). */
export interface EmulatorConsole {
  /** `http://host:port/`: the page. */
  readonly url: string;
  /** Every log line of the emulator as a structured event (what `/_admin/events` streams). */
  readonly events: AdminEventBus;
  /** The emulator's clock; `advance(ms)` moves it, as `POST /_admin/api/clock/advance` does (which also runs
   * what falls due). */
  readonly clock: AdjustableClock;
  /** Whether peers beyond this machine are served (`--console-remote`). */
  readonly allowRemote: boolean;
}

/** Options of {@link attachConsole}. */
export interface AttachConsoleOptions {
  events: AdminEventBus;
  clock: AdjustableClock;
  logger: EmulatorLogger;
  allowRemote: boolean;
  publisherConfig: PublisherConfig;
  /** The handlers' log level, for the publisher the console acts through. */
  handlerLogLevel: HandlerLogLevel;
}

/** Builds the admin API over a started emulator. */
export function attachConsole(emulator: Emulator, options: AttachConsoleOptions): AdminApi {
  const tokenUses = (emulator.env.VIBA_TOKEN_USE ?? 'id').split(',');
  return createAdminApi({
    gateway: emulator.gateway,
    broker: emulator.broker,
    iot: emulator.iot,
    scheduler: emulator.scheduler,
    issuer: emulator.issuer,
    clock: options.clock,
    bus: options.events,
    logger: options.logger,
    publisherConfig: options.publisherConfig,
    publisherLogLevel: options.handlerLogLevel,
    info: {
      url: emulator.url,
      httpUrl: emulator.httpUrl,
      connectionsEndpoint: emulator.connectionsEndpoint,
      ...(emulator.mqttUrl ? { mqttUrl: emulator.mqttUrl } : {}),
      ...(emulator.mqttWsUrl ? { mqttWsUrl: emulator.mqttWsUrl } : {}),
      ...(emulator.fanoutQueueUrl ? { fanoutQueueUrl: emulator.fanoutQueueUrl } : {}),
      tableName: emulator.tableName,
      tokenUse: emulator.env.VIBA_TOKEN_USE ?? 'id,access',
    },
    tokenUse: tokenUses.includes('id') ? 'id' : 'access',
    allowRemote: options.allowRemote,
    // Read per request, as the emulator holds it (undefined unless started with fault injection).
    faults: () => emulator.faults,
  });
}
