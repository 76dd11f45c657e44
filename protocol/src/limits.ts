/**
 * Every limit viba-realtime enforces, in one place. The handlers, the emulator, the SDK and the CDK stack
 * import these; docs/PROTOCOL.md lists them. Change a value here and every layer follows.
 */

/** Limits of our own protocol. Each is checked by the handlers and answered with a typed error frame. */
export const LIMITS = {
  /** Largest `body` of a client frame, measured as UTF-8 bytes of its JSON. Kept well under API Gateway's
   * 32 KB frame so that an oversized body gets our `body_too_large` error, not a 1009 close. */
  maxBodyBytes: 16 * 1024,
  /** Deepest nesting of objects and arrays in a `body` (the body itself is level 1). */
  maxBodyDepth: 32,
  /** Room names: 1-64 characters from `[A-Za-z0-9_.-]` (see {@link ROOM_NAME_PATTERN}). */
  maxRoomNameLength: 64,
  /** Client message ids (`id` of a client frame): 1-64 characters from `[A-Za-z0-9_.:-]`. */
  maxClientIdLength: 64,
  /** Default number of messages in one history page. */
  historyPageDefault: 50,
  /** Largest history page a client may ask for. */
  historyPageMax: 100,
  /** Largest history frame, in UTF-8 bytes: a page is cut short (with a `next` cursor) to stay under API
   * Gateway's 128 KB message limit, with room for the frame around the messages. */
  historyPageMaxBytes: 120 * 1024,
  /** How long chat messages are kept (DynamoDB TTL), in seconds: 30 days. */
  messageRetentionSeconds: 30 * 24 * 3600,
  /** How long a client message id is remembered for de-duplication, in seconds: 24 hours. */
  dedupeWindowSeconds: 24 * 3600,
  /** A de-duplication claim whose message is not stored after this long is taken over by a retry (ms).
   * Twice API Gateway's 29 s integration timeout, so the request that made the claim is surely over even
   * with clock skew between Lambda instances. */
  dedupeClaimStaleMs: 60_000,
  /** Rooms one connection may have joined at once. */
  maxRoomsPerConnection: 100,
  /** Parallel `@connections` posts per fan-out. Under the SDK's default of 50 sockets per client, and high
   * enough that 1,000 posts at 20 ms each finish in about half a second (bench/delivery-cost.ts). */
  deliveryConcurrency: 48,
  /** Attempts per `@connections` post when API Gateway answers 429 or 5xx (first try included). */
  deliveryMaxAttempts: 4,
  /** Base delay of the full-jitter backoff between delivery attempts (ms). */
  deliveryBackoffBaseMs: 50,
  /** Cap of that backoff (ms). */
  deliveryBackoffMaxMs: 1_000,
  /** Default number of notifications in one inbox page. */
  inboxPageDefault: 20,
  /** Largest inbox page a client may ask for. */
  inboxPageMax: 100,
  /** Ids in one `markRead`. */
  maxMarkReadIds: 100,
  /** How long a notification is kept (DynamoDB TTL) unless the backend says otherwise, seconds: 30 days. */
  notificationRetentionSeconds: 30 * 24 * 3600,
  /** Longest retention the backend may ask for, seconds: 365 days. */
  maxNotificationRetentionSeconds: 365 * 24 * 3600,
  /** Users one `notify` call may address. */
  maxNotifyRecipients: 1_000,
  /** How long announcements are kept for `announcements` reads, seconds: 7 days. */
  announcementRetentionSeconds: 7 * 24 * 3600,
  /** Default number of announcements in one page. */
  announcementsPageDefault: 50,
  /** Largest announcements page a client may ask for. */
  announcementsPageMax: 100,
  /** Audiences of up to this many WebSocket connections are delivered by the invocation that published;
   * larger ones are split into batches on the fan-out queue. */
  fanoutInlineMax: 500,
  /** Rooms of up to this many subscribed connections get a chat message from the invocation that stored it;
   * larger rooms get it through the fan-out queue in batches, so a send never nears API Gateway's 29 s
   * integration timeout. A post costs ~2.4 ms of a 256 MB Lambda's CPU (bench/cost.ts), so 2,000 take about
   * 5 s. Higher than `fanoutInlineMax` because chat is latency-bound: the queue adds a hop. */
  chatFanoutInlineMax: 2_000,
  /** Connections in one fan-out batch (one queue message, one worker invocation). A batch of 500 at 48 posts
   * in flight and ~20 ms per post takes about 0.2 s, far inside the worker's timeout. */
  fanoutBatchSize: 500,
  /** Times a batch's failed deliveries are re-queued (as a smaller batch) before they are given up, logged. */
  fanoutMaxAttempts: 3,
  /** A fan-out batch claimed by a worker that has not finished after this long is taken over (ms): the
   * worker's timeout (60 s) twice over. */
  fanoutClaimStaleMs: 120_000,
  /** WebSocket connections with an expired token one run of the token sweeper closes (the rest are left for
   * the next run, a minute later). A close is two `@connections` calls, ~5 ms of a 256 MB Lambda's CPU
   * (bench/cost.ts), so 2,000 take about 10 s of the sweeper's 60 s. */
  tokenSweepMaxPerRun: 2_000,
} as const;

/**
 * API Gateway WebSocket's own service limits (AWS quotas, not ours). The emulator applies them as AWS does;
 * they are configurable in the emulator only so tests need not wait ten minutes.
 */
export const APIGW_LIMITS = {
  /** Largest WebSocket message (after reassembly of frames): 128 KB. Larger closes with 1009. */
  maxMessageBytes: 128 * 1024,
  /** Largest single WebSocket frame: 32 KB. Larger closes with 1009. */
  maxFrameBytes: 32 * 1024,
  /** Idle connection timeout: 10 minutes. */
  idleTimeoutMs: 10 * 60 * 1000,
  /** Maximum connection duration: 2 hours. */
  maxConnectionMs: 2 * 60 * 60 * 1000,
  /** API Gateway gives up on a Lambda integration after 29 s; the routes function's timeout. */
  integrationTimeoutMs: 29_000,
  /** Largest `@connections` PostToConnection payload: 128 KB. */
  maxPostBytes: 128 * 1024,
} as const;

/** Room names: letters, digits, `_`, `.`, `-`; 1 to {@link LIMITS.maxRoomNameLength} characters. */
export const ROOM_NAME_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

/** Client message ids: letters, digits, `_`, `.`, `:`, `-`; 1 to {@link LIMITS.maxClientIdLength} characters. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * AWS IoT Core's message-broker quotas (AWS's, not ours), enforced by the emulator's broker as IoT does.
 * Sources are cited in docs/research/iot-mqtt.md.
 */
export const IOT_LIMITS = {
  /** Largest PUBLISH payload: 128 KB. */
  maxPayloadBytes: 128 * 1024,
  /** Longest topic name or filter, UTF-8 bytes. */
  maxTopicBytes: 256,
  /** Most `/` in a topic name or filter. */
  maxTopicSlashes: 7,
  /** Longest client id, UTF-8 bytes. */
  maxClientIdBytes: 128,
  /** Subscriptions one connection may hold. */
  maxSubscriptionsPerConnection: 50,
  /** Topic filters in one SUBSCRIBE. */
  maxFiltersPerSubscribe: 8,
  /** Unacknowledged outbound QoS 1 messages per client. */
  maxInflightOutbound: 100,
  /** Keep-alive used for 0 or anything above the maximum, seconds. */
  defaultKeepAliveSeconds: 1200,
  /** Smallest keep-alive, seconds (smaller requests are raised). */
  minKeepAliveSeconds: 30,
  /** Largest keep-alive, seconds. */
  maxKeepAliveSeconds: 1200,
  /** Policy documents a custom authorizer may return. */
  maxPolicyDocuments: 10,
  /** Characters per policy document. */
  maxPolicyDocumentChars: 2048,
  /** Shortest `refreshAfterInSeconds` / `disconnectAfterInSeconds` a custom authorizer may return. */
  minAuthorizerSeconds: 300,
  /** Longest `refreshAfterInSeconds` / `disconnectAfterInSeconds`: 24 hours. */
  maxAuthorizerSeconds: 86_400,
} as const;
