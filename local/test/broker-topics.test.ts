/**
 * Topic validation and matching as IoT Core applies them, without a network.
 */
import { describe, expect, it } from 'vitest';
import { BROKER_LIMITS, TopicTree, validateTopicFilter, validateTopicName } from '../src/broker/index.js';

function matches(filters: string[], topic: string, multiLevelWildcardMatchesParent = false): string[] {
  const tree = new TopicTree<string, true>({ multiLevelWildcardMatchesParent });
  for (const f of filters) tree.add(f, f, true);
  const found: string[] = [];
  tree.match(topic, (key) => found.push(key));
  return found.sort();
}

describe('TopicTree', () => {
  it('matches exact, + and # filters', () => {
    const filters = ['a/b', 'a/+', '+/b', 'a/#', '#', 'a/b/c', '+/+/+'];
    expect(matches(filters, 'a/b')).toEqual(['#', '+/b', 'a/#', 'a/+', 'a/b'].sort());
    expect(matches(filters, 'a/b/c')).toEqual(['#', '+/+/+', 'a/#', 'a/b/c'].sort());
  });

  it('does not match a parent with # as IoT, unless configured as the MQTT spec', () => {
    expect(matches(['sensor/#'], 'sensor')).toEqual([]);
    expect(matches(['sensor/#'], 'sensor/')).toEqual(['sensor/#']);
    expect(matches(['sensor/#'], 'sensor', true)).toEqual(['sensor/#']);
  });

  it('keeps $ topics away from filters starting with a wildcard', () => {
    const filters = ['#', '+/events/x', '$aws/#', '$aws/events/+'];
    expect(matches(filters, '$aws/events/x')).toEqual(['$aws/#', '$aws/events/+']);
  });

  it('removes subscriptions and prunes the branches', () => {
    const tree = new TopicTree<string, number>({ multiLevelWildcardMatchesParent: false });
    tree.add('a/b/c', 'k1', 1);
    tree.add('a/b/c', 'k2', 2);
    expect(tree.remove('a/b/c', 'k1')).toBe(true);
    expect(tree.remove('a/b/c', 'k1')).toBe(false);
    const seen: string[] = [];
    tree.match('a/b/c', (k) => seen.push(k));
    expect(seen).toEqual(['k2']);
    expect(tree.remove('a/b/c', 'k2')).toBe(true);
    expect(tree.remove('x/y', 'k2')).toBe(false);
  });
});

describe('validation', () => {
  it('refuses wildcards, empty topics and topics over IoT limits', () => {
    expect(validateTopicName('rt/rooms/lobby', BROKER_LIMITS)).toBeUndefined();
    expect(validateTopicName('rt/+/lobby', BROKER_LIMITS)).toMatch(/wildcards/);
    expect(validateTopicName('', BROKER_LIMITS)).toMatch(/empty/);
    expect(validateTopicName('a/b/c/d/e/f/g/h', BROKER_LIMITS)).toBeUndefined();
    expect(validateTopicName('a/b/c/d/e/f/g/h/i', BROKER_LIMITS)).toMatch(/slashes/);
    expect(validateTopicName('x'.repeat(256), BROKER_LIMITS)).toBeUndefined();
    expect(validateTopicName('x'.repeat(257), BROKER_LIMITS)).toMatch(/256 bytes/);
  });

  it('does not count the Basic Ingest prefix against the limits', () => {
    expect(validateTopicName('$aws/rules/ingest/a/b/c/d/e/f/g/h', BROKER_LIMITS)).toBeUndefined();
  });

  it('checks wildcard placement in filters', () => {
    expect(validateTopicFilter('a/+/c/#', BROKER_LIMITS)).toBeUndefined();
    expect(validateTopicFilter('a/#/c', BROKER_LIMITS)).toMatch(/#/);
    expect(validateTopicFilter('a/b#', BROKER_LIMITS)).toMatch(/#/);
    expect(validateTopicFilter('a/b+/c', BROKER_LIMITS)).toMatch(/\+/);
  });
});
