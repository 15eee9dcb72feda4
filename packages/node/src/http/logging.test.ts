import { describe, expect, it } from 'vitest';
import { createLogger } from '../logger.ts';

describe('node logs (pino)', () => {
  it('writes one JSON object per line with level name, ISO time, msg, base and child fields; bigints as strings', () => {
    const lines: string[] = [];
    const log = createLogger({ component: 'node' }, { level: 'debug', write: (l) => lines.push(l) });
    log.child({ jobId: '0xab' }).info('job claimed', { escrow: 10n ** 30n });
    expect(lines).toHaveLength(1);
    expect(lines[0]!.endsWith('\n')).toBe(true);
    const o = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(o).toMatchObject({ level: 'info', msg: 'job claimed', component: 'node', jobId: '0xab' });
    expect(o.escrow).toBe((10n ** 30n).toString());
    expect(new Date(o.time as string).toISOString()).toBe(o.time);
  });

  it('a re-emitted line (the enclave logs) never writes level, msg or time twice', () => {
    const lines: string[] = [];
    const log = createLogger({}, { write: (l) => lines.push(l) });
    log.info('enclave started', { enclave: true, level: 'warn', msg: 'enclave started', time: 'x', t: 'y' });
    expect(lines[0]!.match(/"level":/g)).toHaveLength(1);
    expect(lines[0]!.match(/"msg":/g)).toHaveLength(1);
    expect(lines[0]!.match(/"time":/g)).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      sourceLevel: 'warn',
      enclave: true,
      t: 'y',
    });
  });

  it('drops levels under the configured one', () => {
    const lines: string[] = [];
    const log = createLogger({}, { level: 'warn', write: (l) => lines.push(l) });
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w', 'e']);
  });

  it('a secret passed by mistake is redacted, at the top level and one object down', () => {
    const lines: string[] = [];
    const log = createLogger({}, { write: (l) => lines.push(l) });
    const secret = `0x${'5e'.repeat(32)}`;
    log.error('oops', {
      privateKey: secret,
      sealedKeys: { blob: secret },
      ctx: { ciphertext: secret, plaintext: 'c4n4ry', 'x-firn-signature': secret },
      code: 'E_INTERNAL',
    });
    const text = lines.join('');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('5e5e');
    expect(text).not.toContain('c4n4ry');
    expect(JSON.parse(text)).toMatchObject({ code: 'E_INTERNAL', privateKey: '[redacted]' });
  });
});
