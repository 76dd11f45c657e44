/**
 * The one price table of the cost model (`bench/cost.ts`, `npm run cost`), quoted by docs/DEPLOY.md's "Cost
 * estimate". AWS list prices for us-east-1, without free tier, transcribed from the sources named per item
 * (stored copies of the pages; `date` is the page's own date or the date its figures were transcribed,
 * `undated` when neither is known). Items marked `assumption: true` were not found in those pages: check
 * them against the AWS pricing pages before relying on the totals.
 *
 * A price is `price` US dollars per `per` units of `unit`; {@link cost} applies it.
 */

/** One line of the price table. */
export interface Price {
  /** US dollars per {@link per} units. */
  price: number;
  /** How many units {@link price} is for (1,000,000 for "per million"). */
  per: number;
  /** What is counted, and how AWS meters it. */
  unit: string;
  /** Where the figure comes from. */
  source: string;
  /** The source's date (ISO), or `undated`. */
  date: string;
  /** Not found in the sources: an assumption to check. */
  assumption?: true;
}

const MILLION = 1_000_000;

export const PRICES = {
  /** When the table was compiled. */
  asOf: '2026-11-25',
  region: 'us-east-1',
  currency: 'USD',
  notes: 'List prices, no free tier, no data transfer out; first pricing tier (first billion messages a month).',
  items: {
    apiGatewayMessage: {
      price: 1.0,
      per: MILLION,
      unit: 'WebSocket message, metered in 32 KB units: each frame received from or sent to a client, @connections posts included (first 1 billion a month)',
      source:
        'aws.amazon.com/api-gateway/pricing (worked example, transcribed 2026-09-20 in api-evangelist/amazon-web-services plans/…-pricing.yml); 32 KB metering: same page; "first 1B": awsforengineers.com, 2025-05-19',
      date: '2026-09-20',
    },
    apiGatewayConnectionMinute: {
      price: 0.25,
      per: MILLION,
      unit: 'WebSocket connection-minute',
      source: 'aws.amazon.com/api-gateway/pricing (as above)',
      date: '2026-09-20',
    },
    lambdaRequest: {
      price: 0.2,
      per: MILLION,
      unit: 'Lambda invocation',
      source: 'wring.co "AWS Lambda Pricing 2026"',
      date: '2026-03-08',
    },
    lambdaArmGbSecond: {
      price: 0.0000133334,
      per: 1,
      unit: 'GB-second of Lambda duration, arm64 (billed wall time, 1 ms granularity; INIT time billed since 2025-08-01, AWS Compute Blog 2025-04-29)',
      source: 'wring.co "AWS Lambda Pricing 2026"',
      date: '2026-03-08',
    },
    dynamodbWriteUnit: {
      price: 0.625,
      per: MILLION,
      unit: 'on-demand write request unit (1 KB written; one more per GSI the item is written to)',
      source: 'airbyte.com "DynamoDB pricing" (after the November 2024 on-demand price cut)',
      date: '2025-07-21',
    },
    dynamodbReadUnit: {
      price: 0.125,
      per: MILLION,
      unit: 'on-demand read request unit (4 KB strongly consistent, 8 KB eventually consistent)',
      source: 'airbyte.com "DynamoDB pricing"',
      date: '2025-07-21',
    },
    dynamodbStorageGbMonth: {
      price: 0.25,
      per: 1,
      unit: 'GB-month of table storage (first 25 GB free; not applied here)',
      source: 'aws.amazon.com/dynamodb/pricing (stored copy)',
      date: 'undated',
    },
    dynamodbPitrGbMonth: {
      price: 0.2,
      per: 1,
      unit: 'GB-month of point-in-time recovery (continuous backups), on the table size',
      source: 'not found in the stored pages',
      date: 'undated',
      assumption: true,
    },
    iotConnectionMinute: {
      price: 0.08,
      per: MILLION,
      unit: 'IoT Core connection-minute',
      source:
        'aws.amazon.com/iot-core/pricing (its example is Europe (Ireland); transcribed 2026-09-20 in api-evangelist/amazon-iot-core); assumed equal in us-east-1',
      date: '2026-09-20',
      assumption: true,
    },
    iotMessage: {
      price: 1.0,
      per: MILLION,
      unit: 'IoT Core message, metered in 5 KB units: PUBLISH received and sent, PUBACK received from a device, CONNECT, SUBSCRIBE, each HTTPS publish (first 1 billion a month); PINGREQ/PINGRESP free',
      source:
        'aws.amazon.com/iot-core/pricing (as above); what is metered: aws.amazon.com/iot-core/pricing/additional-details',
      date: '2026-09-20',
    },
    iotRuleTriggered: {
      price: 0.15,
      per: MILLION,
      unit: 'IoT rule triggered',
      source: 'not found in the stored pages',
      date: 'undated',
      assumption: true,
    },
    iotRuleAction: {
      price: 0.15,
      per: MILLION,
      unit: 'IoT rule action executed',
      source: 'not found in the stored pages',
      date: 'undated',
      assumption: true,
    },
    sqsRequest: {
      price: 0.4,
      per: MILLION,
      unit: 'SQS standard request, metered in 64 KB chunks',
      source: 'cloudburn.io "Amazon SQS Pricing"',
      date: '2026-03-14',
    },
    logsIngestedGb: {
      price: 0.5,
      per: 1,
      unit: 'GB of CloudWatch Logs ingested',
      source: 'cloudburn.io (February 2026); factualminds.com',
      date: '2026-06-13',
    },
    logsStoredGbMonth: {
      price: 0.03,
      per: 1,
      unit: 'GB-month of CloudWatch Logs stored',
      source: 'hykell.com',
      date: 'undated',
    },
    alarmMonth: {
      price: 0.1,
      per: 1,
      unit: 'standard CloudWatch alarm-month',
      source: 'c3x.dev',
      date: 'undated',
    },
    dashboardMonth: {
      price: 3.0,
      per: 1,
      unit: 'CloudWatch dashboard-month (beyond the account free ones)',
      source: 'factualminds.com',
      date: '2026-06-13',
    },
  },
  /** Metering unit sizes, in bytes (same pages as the prices that use them). */
  metering: {
    apiGatewayMessageBytes: 32 * 1024,
    iotMessageBytes: 5 * 1024,
    sqsRequestBytes: 64 * 1024,
    dynamodbWriteUnitBytes: 1024,
    dynamodbReadUnitBytes: 4 * 1024,
    /** DynamoDB storage adds 100 bytes of overhead per item (and per index entry). */
    dynamodbItemOverheadBytes: 100,
  },
} as const satisfies {
  asOf: string;
  region: string;
  currency: string;
  notes: string;
  items: Record<string, Price>;
  metering: Record<string, number>;
};

/** The name of a priced item. */
export type PriceItem = keyof typeof PRICES.items;

/** What `quantity` units of `item` cost, in US dollars. */
export function cost(item: PriceItem, quantity: number): number {
  const p: Price = PRICES.items[item];
  return (quantity * p.price) / p.per;
}
