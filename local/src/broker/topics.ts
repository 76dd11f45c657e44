/**
 * Topic names, topic filters and their matching, with IoT Core's rules on top of MQTT's:
 * - at most `maxTopicBytes` UTF-8 bytes and `maxTopicSlashes` slashes, not counting the mandatory
 *   `$aws/rules/{rule}/` prefix of Basic Ingest topics;
 * - `#` does not match its parent level (`a/#` matches `a/` and `a/b`, not `a`) unless told otherwise;
 * - as MQTT requires, a filter starting with a wildcard does not match a topic starting with `$`.
 */

/** The limits {@link validateTopicName} and {@link validateTopicFilter} apply. */
export interface TopicLimits {
  maxTopicBytes: number;
  maxTopicSlashes: number;
}

const BASIC_INGEST = /^\$aws\/rules\/[^/]+\//i;

/** The part of a topic IoT's length and slash limits apply to. */
function limitedPart(topic: string): string {
  const prefix = BASIC_INGEST.exec(topic);
  return prefix ? topic.slice(prefix[0].length) : topic;
}

function checkCommon(topic: string, limits: TopicLimits): string | undefined {
  if (topic.length === 0) return 'empty';
  if (topic.includes('\u0000')) return 'contains U+0000';
  const part = limitedPart(topic);
  if (Buffer.byteLength(part, 'utf8') > limits.maxTopicBytes) return `longer than ${limits.maxTopicBytes} bytes`;
  let slashes = 0;
  for (const ch of part) if (ch === '/') slashes++;
  if (slashes > limits.maxTopicSlashes) return `more than ${limits.maxTopicSlashes} slashes`;
  return undefined;
}

/** Why a PUBLISH topic name is invalid, or `undefined` when it is valid. */
export function validateTopicName(topic: string, limits: TopicLimits): string | undefined {
  if (topic.includes('+') || topic.includes('#')) return 'wildcards are not allowed in a topic name';
  return checkCommon(topic, limits);
}

/** Why a SUBSCRIBE topic filter is invalid, or `undefined` when it is valid. */
export function validateTopicFilter(filter: string, limits: TopicLimits): string | undefined {
  const common = checkCommon(filter, limits);
  if (common) return common;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return '# must be a whole level and the last one';
    }
    if (level.includes('+') && level !== '+') return '+ must be a whole level';
  }
  return undefined;
}

interface Node<K, V> {
  children: Map<string, Node<K, V>>;
  /** Subscribers whose filter ends at this node. */
  values: Map<K, V>;
}

function newNode<K, V>(): Node<K, V> {
  return { children: new Map(), values: new Map() };
}

/**
 * Subscriptions indexed by topic filter level, so matching a topic walks only the levels it has
 * (plus the `+` and `#` branches) instead of every subscription in the broker.
 */
export class TopicTree<K, V> {
  private readonly root = newNode<K, V>();
  private readonly hashMatchesParent: boolean;

  constructor(options: { multiLevelWildcardMatchesParent: boolean }) {
    this.hashMatchesParent = options.multiLevelWildcardMatchesParent;
  }

  /** Adds or replaces `key`'s subscription to `filter`. */
  add(filter: string, key: K, value: V): void {
    let node = this.root;
    for (const level of filter.split('/')) {
      let child = node.children.get(level);
      if (!child) {
        child = newNode();
        node.children.set(level, child);
      }
      node = child;
    }
    node.values.set(key, value);
  }

  /** Removes `key`'s subscription to `filter`; prunes emptied branches so the tree does not grow forever. */
  remove(filter: string, key: K): boolean {
    const path: Array<[Node<K, V>, string]> = [];
    let node = this.root;
    for (const level of filter.split('/')) {
      const child = node.children.get(level);
      if (!child) return false;
      path.push([node, level]);
      node = child;
    }
    const removed = node.values.delete(key);
    for (let i = path.length - 1; i >= 0; i--) {
      const [parent, level] = path[i] as [Node<K, V>, string];
      const child = parent.children.get(level) as Node<K, V>;
      if (child.values.size > 0 || child.children.size > 0) break;
      parent.children.delete(level);
    }
    return removed;
  }

  /** Calls `visit` for every (key, value) whose filter matches `topic`; a key may be visited more than once. */
  match(topic: string, visit: (key: K, value: V) => void): void {
    const levels = topic.split('/');
    const dollar = topic.startsWith('$');
    const walk = (node: Node<K, V>, i: number) => {
      // A wildcard in the first level never matches a `$` topic (MQTT 3.1.1 §4.7.2, MQTT 5 §4.7.2).
      const wildcardsAllowed = !(dollar && i === 0);
      if (wildcardsAllowed) {
        const hash = node.children.get('#');
        // `#` matches the remaining levels; IoT requires at least one of them (`a/#` does not match `a`).
        if (hash && (i < levels.length || this.hashMatchesParent)) for (const [k, v] of hash.values) visit(k, v);
      }
      if (i === levels.length) {
        for (const [k, v] of node.values) visit(k, v);
        return;
      }
      const exact = node.children.get(levels[i] as string);
      if (exact) walk(exact, i + 1);
      if (wildcardsAllowed) {
        const plus = node.children.get('+');
        if (plus) walk(plus, i + 1);
      }
    };
    walk(this.root, 0);
  }
}
