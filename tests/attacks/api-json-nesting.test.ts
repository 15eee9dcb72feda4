import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobService } from '../../packages/node/src/jobs/jobApi.ts';
import { type StubNodeApiServer, startStubNodeApi } from '../helpers/stubNodeApiServer.ts';

// A stranger (no keys) posts a job or session body that is valid JSON but nested 500,000 deep,
// well within the 2 MiB body cap. Promised (docs/api.md): a typed 4xx for a malformed body, the
// daemon serves others, no error logged for a caller's mistake. It was a 500 E_INTERNAL with an
// error logged: the body was parsed, then stringified again for the validator, which recursed
// past the stack.
describe('attack: a deeply nested JSON body on the job and session routes', () => {
  let api: StubNodeApiServer;
  let url: string;
  beforeAll(async () => {
    // `jobs` is never reached: the body is refused before any handler.
    api = await startStubNodeApi({ jobs: {} as JobService }, { chain: {} });
    url = api.url;
  });
  afterAll(() => api.close());

  for (const route of ['/v1/jobs', '/v1/sessions'])
    it(`POST ${route}: 400 E_INVALID_INPUT, no error logged, the node still answers`, async () => {
      const depth = 500_000;
      const body = `{"jobId":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const r = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      const answer = (await r.json()) as { error: { code: string; message: string } };
      expect(r.status).toBe(400);
      expect(answer.error.code).toBe('E_INVALID_INPUT');
      // Refused by the shape scan before any parse (depth cap 32).
      expect(answer.error.message).toMatch(/nests deeper than 32/);
      // Within the depth cap, the schema validator names the field.
      const shallow = await fetch(`${url}${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"jobId":${'['.repeat(20)}${']'.repeat(20)}}`,
      });
      expect(shallow.status).toBe(400);
      expect(((await shallow.json()) as { error: { message: string } }).error.message).toMatch(/jobId/);
      expect(api.logs.join('')).not.toMatch(/"level":"error"/);
      expect((await fetch(`${url}/v1/openapi.json`)).status).toBe(200);
    }, 30_000);
});
