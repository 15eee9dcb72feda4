import { readFileSync } from 'node:fs';
import { sharedPath } from '@firn/core';
import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.ts';
import { fitStandardizer, splitDataset } from './dataset.ts';
import { createPrng } from './prng.ts';

// CSV parsing, label mapping and the seeded split. Not covered: multi-line quoted fields (unsupported).
describe('parseCsv', () => {
  it('reads iris with string labels mapped in sorted order', () => {
    const ds = parseCsv(readFileSync(sharedPath('datasets', 'iris.csv')), { task: 'classification' });
    expect(ds.rows).toBe(150);
    expect(ds.cols).toBe(4);
    expect(ds.labels).toEqual(['Iris-setosa', 'Iris-versicolor', 'Iris-virginica']);
    expect(ds.y[0]).toBe(0);
    expect(ds.y[149]).toBe(2);
    expect(ds.x[0]).toBe(Math.fround(5.1));
  });

  it('detects a header and finds the target by name or index', () => {
    const text = 'a,label,b\n1,x,2\n3,"y",4\r\n\n5,x,6\n';
    const byName = parseCsv(text, { task: 'classification', target: 'label' });
    expect(byName.featureNames).toEqual(['a', 'b']);
    expect(Array.from(byName.x)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Array.from(byName.y)).toEqual([0, 1, 0]);
    const byIndex = parseCsv('t,a\n1,2\n3,4\n', { task: 'regression', target: 0, header: true });
    expect(Array.from(byIndex.y)).toEqual([1, 3]);
    expect(() => parseCsv(text, { task: 'regression', target: 0 })).toThrow(
      /row 2 column label is not a number/,
    );
    // Numeric labels sort numerically, not as text.
    expect(parseCsv('1,10\n2,9\n3,10\n', { task: 'classification' }).labels).toEqual(['9', '10']);
    expect(parseCsv('1,2\n3,4\n', { task: 'regression' }).rows).toBe(2);
  });

  it('reports missing and non-numeric values with row and column', () => {
    const t = (text: string, re: RegExp, target?: string | number) =>
      expect(() =>
        parseCsv(text, { task: 'classification', ...(target === undefined ? {} : { target }) }),
      ).toThrow(expect.objectContaining({ code: 'E_DATA_INVALID', message: expect.stringMatching(re) }));
    t('f1,f2,y\n1,2,0\n1,,1\n', /row 3 column f2 is missing/);
    t('1,2,0\n1,abc,1\n', /row 2 column column1 is not a number/);
    t('1,2,0\n1,2\n', /row 2 has 2 columns/);
    t('f1,y\n1,0\n', /target column "z" not found/, 'z');
    t('1,0\n2,1\n', /no header/, 'y');
    t('1,0\n2,1\n', /index 5/, 5);
    t('1,0\n2,0\n', /fewer than 2 classes/);
    expect(() => parseCsv('1,x\n2,y\n', { task: 'regression' })).toThrow(
      expect.objectContaining({ code: 'E_DATA_INVALID' }),
    );
    expect(() => parseCsv('1,2\n', { task: 'regression', maxBytes: 2 })).toThrow(
      expect.objectContaining({ code: 'E_TOO_LARGE' }),
    );
  });
});

describe('splitDataset and fitStandardizer', () => {
  it('splits reproducibly from the seed and standardises with training statistics', () => {
    const ds = parseCsv(readFileSync(sharedPath('datasets', 'banknote_authentication.csv')), {
      task: 'classification',
    });
    const a = splitDataset(ds, 0.2, createPrng(9));
    const b = splitDataset(ds, 0.2, createPrng(9));
    const c = splitDataset(ds, 0.2, createPrng(10));
    expect(a.val.rows).toBe(274);
    expect(a.train.rows + a.val.rows).toBe(1372);
    expect(a.val.x).toEqual(b.val.x);
    expect(a.val.x).not.toEqual(c.val.x);
    const s = fitStandardizer(Float32Array.from([1, 10, 3, 10]), 2, 2);
    expect(s.mean).toEqual([2, 10]);
    expect(s.std).toEqual([1, 1]); // the constant column gets std 1
  });
});
