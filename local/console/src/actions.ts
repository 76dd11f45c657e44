/**
 * The forms that act: as a user (a chat through the gateway), as the backend (notify, announce), as the
 * identity provider (a token), and on the emulator itself (its clock, its faults).
 */
import type { AckFrame } from '@viba-realtime/protocol';
import type { ClockView, FaultsView } from '../../src/admin/types.js';
import { api, describeError } from './api.js';
import type { App } from './app.js';
import { byId, field, find, h, keepFocus, listField, showResult } from './dom.js';
import { clockTime, duration } from './format.js';

/** Runs `action` on submit with the form's status line showing progress and outcome. */
function onSubmit(
  form: HTMLFormElement,
  action: (result: Element | null, submitter: HTMLElement | null) => Promise<string>,
) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const result = form.querySelector('.result') ?? document.getElementById(`${form.id}-result`);
    showResult(result, 'busy', 'Working…');
    try {
      showResult(result, 'ok', await action(result, event.submitter));
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
  });
}

function setupActAs(app: App): void {
  const chat = byId('chat-form', HTMLFormElement);
  onSubmit(chat, async () => {
    const user = field(chat, 'user');
    const room = field(chat, 'room');
    const { ack } = await api.post<{ ack: AckFrame }>('/chat', {
      user,
      groups: listField(chat, 'groups'),
      room,
      text: field(chat, 'text'),
    });
    app.refreshSoon(100);
    return `Sent #${ack.seq} to ${room} as ${user}.`;
  });

  const notify = byId('notify-form', HTMLFormElement);
  onSubmit(notify, async () => {
    const users = listField(notify, 'users');
    const { outcomes } = await api.post<{ outcomes: { userId: string; delivery: { delivered: number } }[] }>(
      '/notify',
      {
        users,
        title: field(notify, 'title'),
        text: field(notify, 'text'),
      },
    );
    const live = outcomes.reduce((sum, outcome) => sum + outcome.delivery.delivered, 0);
    return `Notified ${users.join(', ')}: stored in ${outcomes.length} inbox${outcomes.length === 1 ? '' : 'es'}, ${live} live deliver${live === 1 ? 'y' : 'ies'}.`;
  });

  const announce = byId('announce-form', HTMLFormElement);
  onSubmit(announce, async () => {
    const group = field(announce, 'group');
    const outcome = await api.post<{ connections: number; delivered: number; batches: number; mqtt: string }>(
      '/announce',
      { text: field(announce, 'text'), group },
    );
    const queued = outcome.batches > 0 ? `, ${outcome.batches} batches queued` : '';
    return `Announced to ${group ? `group ${group}` : 'everyone'}: ${outcome.delivered} of ${outcome.connections} WebSocket connections${queued}, MQTT ${outcome.mqtt}.`;
  });

  const token = byId('token-form', HTMLFormElement);
  const output = byId('token-output', HTMLTextAreaElement);
  const copy = byId('token-copy', HTMLButtonElement);
  onSubmit(token, async () => {
    const sub = field(token, 'sub');
    const ttl = field(token, 'ttlSeconds');
    const pair = await api.post<{ idToken: string; expiresIn: number }>('/tokens', {
      sub,
      groups: listField(token, 'groups'),
      ...(ttl ? { ttlSeconds: Number(ttl) } : {}),
    });
    output.value = pair.idToken;
    copy.disabled = false;
    return `ID token for ${sub}, valid ${duration(pair.expiresIn * 1000)}.`;
  });
  copy.addEventListener('click', async () => {
    const result = token.querySelector('.result');
    try {
      await navigator.clipboard.writeText(output.value);
      showResult(result, 'ok', 'Copied to the clipboard.');
    } catch {
      // No clipboard permission (an insecure origin, a denied prompt): select it for the user to copy.
      output.focus();
      output.select();
      showResult(result, 'ok', 'Selected: press Ctrl+C (⌘C) to copy.');
    }
  });
}

function setupTime(app: App): void {
  const now = byId('time-now', HTMLElement);
  const offset = byId('time-offset', HTMLElement);
  const headerNow = byId('clock-now', HTMLElement);
  const headerOffset = byId('clock-offset', HTMLElement);
  const result = byId('time-result', HTMLElement);
  const form = byId('advance-form', HTMLFormElement);

  const tick = () => {
    const time = clockTime(app.now());
    const ahead = app.state?.clock.offsetMs ?? 0;
    const words = ahead > 0 ? `(${duration(ahead)} ahead)` : '';
    for (const element of [now, headerNow]) if (element.textContent !== time) element.textContent = time;
    for (const element of [offset, headerOffset]) if (element.textContent !== words) element.textContent = words;
  };
  window.setInterval(tick, 1000);
  app.onState(tick);

  const advance = async (minutes: number) => {
    showResult(result, 'busy', `Moving the clock ${duration(minutes * 60_000)} ahead…`);
    try {
      const answer = await api.post<{ clock: ClockView; closedConnections: number; expiredTokenConnections: number }>(
        '/clock/advance',
        { minutes },
      );
      const closed = answer.closedConnections;
      const expired = answer.expiredTokenConnections;
      const plural = (n: number) => `${n} connection${n === 1 ? '' : 's'}`;
      showResult(
        result,
        'ok',
        `Moved ${duration(minutes * 60_000)} ahead, to ${clockTime(answer.clock.now)}${closed > 0 ? `; API Gateway closed ${plural(closed)}` : ''}${expired > 0 ? `; the token sweeper closed ${plural(expired)} whose token expired` : ''}.`,
      );
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
    await app.refresh();
  };
  byId('advance-buttons', HTMLElement)
    .querySelectorAll('button')
    .forEach((button) => {
      button.addEventListener('click', () => void advance(Number(button.dataset.minutes)));
    });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void advance(Number(field(form, 'minutes')));
  });
}

/** One line per rule: `dynamodb throttle {"operation":"PutItem"} · fired 1 of 2`. */
function describeRule(rule: Record<string, unknown>): string {
  const match = rule.match === undefined ? '' : ` ${JSON.stringify(rule.match)}`;
  const times = typeof rule.times === 'number' ? ` of ${rule.times}` : '';
  const fired = typeof rule.fired === 'number' ? ` · fired ${rule.fired}${times}` : '';
  const probability = typeof rule.probability === 'number' ? ` · p ${rule.probability}` : '';
  const inactive = rule.active === false ? ' · done' : '';
  return `${String(rule.target)} ${String(rule.fault)}${match}${fired}${probability}${inactive}`;
}

/** An example `match` per target, as the field's placeholder. */
const MATCH_EXAMPLES: Record<string, string> = {
  dynamodb: '{"operation":"PutItem","sortKeyPrefix":"SEQ#"}',
  connections: '{"connectionId":"…"}',
  'iot-publish': '{"topic":"rt/users/+/rooms/#"}',
  handler: '{"route":"send"}',
};

function setupFaults(app: App): void {
  const ruleForm = byId('fault-rule-form', HTMLFormElement);
  const rules = byId('fault-rules', HTMLElement);
  const rulesBody = byId('fault-rules-table', HTMLTableElement).tBodies[0] as HTMLTableSectionElement;
  const rulesEmpty = byId('fault-rules-empty', HTMLElement);
  const clear = byId('faults-clear', HTMLButtonElement);
  const postForm = byId('post-fault-form', HTMLFormElement);
  const result = byId('faults-result', HTMLElement);
  const target = find(ruleForm, 'select[name="target"]', HTMLSelectElement);
  const fault = find(ruleForm, 'select[name="fault"]', HTMLSelectElement);
  const match = find(ruleForm, 'input[name="match"]', HTMLInputElement);
  let targets: FaultsView['targets'] = {};

  const act = async (what: () => Promise<string>) => {
    showResult(result, 'busy', 'Working…');
    try {
      showResult(result, 'ok', await what());
    } catch (error) {
      showResult(result, 'error', describeError(error));
    }
    await app.refresh();
  };

  /** The fault choices follow the target: each target fails in its own service's ways. */
  const showFaults = () => {
    const chosen = fault.value;
    const faults = targets[target.value] ?? [];
    fault.replaceChildren(...faults.map((name) => h('option', { value: name, selected: name === chosen }, name)));
    match.placeholder = MATCH_EXAMPLES[target.value] ?? '';
  };
  target.addEventListener('change', showFaults);

  const render = (faults: FaultsView) => {
    const registry = faults.mode === 'rules';
    ruleForm.hidden = !registry;
    rules.hidden = !registry;
    postForm.hidden = registry;
    if (Object.keys(faults.targets).join() !== Object.keys(targets).join()) {
      targets = faults.targets;
      target.replaceChildren(...Object.keys(targets).map((name) => h('option', { value: name }, name)));
      showFaults();
    }
    keepFocus(rulesBody, () =>
      rulesBody.replaceChildren(
        ...faults.rules.map((rule) => {
          const id = String(rule.id ?? '');
          return h(
            'tr',
            {},
            h('td', {}, h('code', {}, describeRule(rule))),
            h(
              'td',
              {},
              h(
                'button',
                {
                  type: 'button',
                  class: 'danger',
                  'data-focus-key': `fault:${id}`,
                  'aria-label': `Remove fault ${id}: ${describeRule(rule)}`,
                  onclick: () =>
                    void act(async () => {
                      await api.delete(`/faults/${encodeURIComponent(id)}`);
                      return `Removed fault ${id}.`;
                    }),
                },
                'Remove',
              ),
            ),
          );
        }),
      ),
    );
    rulesEmpty.hidden = faults.rules.length > 0;
    clear.disabled = faults.rules.length === 0;
    const select = postForm.elements.namedItem('connectionId');
    if (select instanceof HTMLSelectElement) {
      const chosen = select.value;
      const ws = (app.state?.connections ?? []).filter((c) => c.channel === 'ws');
      select.replaceChildren(
        ...ws.map((c) =>
          h('option', { value: c.connectionId, selected: c.connectionId === chosen }, `${c.user} · ${c.connectionId}`),
        ),
      );
    }
  };
  app.onState((state) => render(state.faults));

  ruleForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const times = field(ruleForm, 'times');
    const probability = field(ruleForm, 'probability');
    void act(async () => {
      let parsedMatch: unknown;
      try {
        parsedMatch = match.value.trim() === '' ? undefined : JSON.parse(match.value);
      } catch {
        throw new Error(`Match must be JSON, e.g. ${MATCH_EXAMPLES[target.value] ?? '{}'}`);
      }
      const { fault: added } = await api.post<{ fault: { id?: string } }>('/faults', {
        target: target.value,
        fault: fault.value,
        ...(parsedMatch === undefined ? {} : { match: parsedMatch }),
        ...(times ? { times: Number(times) } : {}),
        ...(probability ? { probability: Number(probability) } : {}),
      });
      return `Added fault ${added.id ?? ''}.`.replace(' .', '.');
    });
  });
  clear.addEventListener(
    'click',
    () =>
      void act(async () => {
        await api.delete('/faults');
        return 'Cleared every fault.';
      }),
  );
  postForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const connectionId = field(postForm, 'connectionId');
    const statuses = listField(postForm, 'statuses').map(Number);
    void act(async () => {
      await api.post('/faults', { connectionId, statuses });
      return `The next ${statuses.length} post${statuses.length === 1 ? '' : 's'} to ${connectionId} will answer ${statuses.join(', ')}.`;
    });
  });
}

export function setupActions(app: App): void {
  setupActAs(app);
  setupTime(app);
  setupFaults(app);
}
