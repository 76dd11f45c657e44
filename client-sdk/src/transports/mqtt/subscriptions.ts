/**
 * Which topic filters an MQTT connection subscribes to, and how they are split into SUBSCRIBE packets so
 * that IoT Core's quotas never refuse one (`IOT_LIMITS`: 8 filters per SUBSCRIBE, 50 per connection).
 */
import { GROUP_NAME_PATTERN, IOT_LIMITS, topics } from '@viba-realtime/protocol';

/** A Cognito group the connection does not subscribe to, and why. */
export interface SkippedGroup {
  group: string;
  /** `invalid_name`: not usable in a topic (the IoT policy never grants it either); `subscription_limit`:
   * past IoT's 50 subscriptions per connection. */
  reason: 'invalid_name' | 'subscription_limit';
}

/** What {@link planSubscriptions} decided. */
export interface SubscriptionPlan {
  /** Filters without which the connection is useless: request answers and room traffic. */
  required: readonly string[];
  /** Every filter, in subscription order (the required ones first). */
  filters: readonly string[];
  /** {@link filters} cut into SUBSCRIBE packets of at most `IOT_LIMITS.maxFiltersPerSubscribe`. */
  batches: readonly (readonly string[])[];
  skippedGroups: readonly SkippedGroup[];
}

/** The subscriptions of user `sub` in `groups` (the token's `cognito:groups`; repeats and non-strings ignored). */
export function planSubscriptions(sub: string, groups: readonly unknown[]): SubscriptionPlan {
  const required = [topics.responses(sub), topics.userRoomsFilter(sub)];
  const filters = [...required, topics.inbox(sub), topics.announcements];
  const skippedGroups: SkippedGroup[] = [];
  const seen = new Set<string>();
  for (const group of groups) {
    if (typeof group !== 'string' || seen.has(group)) continue;
    seen.add(group);
    if (!GROUP_NAME_PATTERN.test(group)) skippedGroups.push({ group, reason: 'invalid_name' });
    else if (filters.length >= IOT_LIMITS.maxSubscriptionsPerConnection) {
      skippedGroups.push({ group, reason: 'subscription_limit' });
    } else filters.push(topics.groupAnnouncements(group));
  }
  const batches: string[][] = [];
  for (let i = 0; i < filters.length; i += IOT_LIMITS.maxFiltersPerSubscribe) {
    batches.push(filters.slice(i, i + IOT_LIMITS.maxFiltersPerSubscribe));
  }
  return { required, filters, batches, skippedGroups };
}
