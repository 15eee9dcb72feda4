import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { appNodeArgs } from './nodeApps.ts';

describe('node start with several --app', () => {
  const argv = [
    'node',
    'start',
    '--devnet',
    's.json',
    '--app',
    'a',
    '--app=b',
    '--data-dir',
    'd',
    '--port',
    '9000',
  ];

  it('gives each app one node with one --app, its own data directory and port', () => {
    const r = appNodeArgs(argv, ['a', 'b'], { dataDir: 'd', port: '9000' });
    expect(r).toEqual([
      [
        'node',
        'start',
        '--devnet',
        's.json',
        '--app',
        'a',
        '--data-dir',
        join('d', 'app-1'),
        '--port',
        '9000',
      ],
      [
        'node',
        'start',
        '--devnet',
        's.json',
        '--app',
        'b',
        '--data-dir',
        join('d', 'app-2'),
        '--port',
        '9001',
      ],
    ]);
    expect(appNodeArgs(argv, ['a', 'b'], { dataDir: 'd', port: '0' }).map((x) => x.at(-1))).toEqual([
      '0',
      '0',
    ]);
  });

  it('refuses one --endpoint for several nodes', () => {
    expect(() => appNodeArgs(argv, ['a', 'b'], { dataDir: 'd', port: '0', endpoint: 'http://x' })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
