import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.ts';

// Decision 1748: the shared logger redacts every URL's credentials, whoever logs them and wherever
// in the line they sit (message, field, nested field, array, Error, child binding, base).
const KEYED = 'https://op:pa55word@rpc.example/v2/Sk3yZQ9x7LmP4vRt2WnB8cYd?apikey=QUERYSECRET123';
const SECRETS = ['Sk3yZQ9x7LmP4vRt2WnB8cYd', 'pa55word', 'QUERYSECRET123'];

function capture() {
  const lines: string[] = [];
  return { lines, write: (l: string) => lines.push(l) };
}

describe('createLogger: URL credentials never reach a log line', () => {
  it('redacts the message, top-level, nested, array and Error fields, child and base bindings', () => {
    const c = capture();
    const log = createLogger({ rpc: KEYED }, { level: 'debug', write: c.write });
    log.warn(`call to ${KEYED} failed`, {
      message: `HTTP request failed.\n\nURL: ${KEYED}\nRequest body: {}`,
      nested: { deeper: { url: KEYED } },
      list: [KEYED, 1, { u: KEYED }],
      error: new Error(`fetch ${KEYED}`),
      count: 3,
      big: 7n,
    });
    log.child({ endpoint: KEYED }).info('child', { ok: true });
    const all = c.lines.join('\n');
    for (const s of SECRETS) expect(all).not.toContain(s);
    const first = JSON.parse(c.lines[0] as string);
    // Which endpoint is still readable, and non-string fields are untouched.
    expect(first.msg).toBe('call to https://***@rpc.example/v2/***?apikey=*** failed');
    expect(first.nested.deeper.url).toBe('https://***@rpc.example/v2/***?apikey=***');
    expect(first.list[1]).toBe(1);
    expect(first.error).toEqual({
      type: 'Error',
      message: 'fetch https://***@rpc.example/v2/***?apikey=***',
    });
    expect(first.count).toBe(3);
    expect(first.big).toBe('7');
    expect(JSON.parse(c.lines[1] as string).endpoint).toBe('https://***@rpc.example/v2/***?apikey=***');
  });

  it('text without a URL is logged unchanged', () => {
    const c = capture();
    createLogger({}, { write: c.write }).info('plain', { message: 'execution reverted: NotEligible()' });
    expect(JSON.parse(c.lines[0] as string).message).toBe('execution reverted: NotEligible()');
  });
});
