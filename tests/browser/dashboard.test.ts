import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_POLICY } from '@firn/attestation';
import { deploymentFromState, devnetRoots, loadDevnetState, runJob } from '@firn/client';
import { hexBytes, repoRoot, sharedPath } from '@firn/core';
import type { Browser, Page, Request } from 'playwright-core';
import { createPublicClient, type Hex, http, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { advance, emptyNetwork, type PageConfig, refreshJob } from '../../apps/dashboard/src/network.ts';
import { verifyProofInBrowser } from '../../apps/dashboard/src/verifyProofInBrowser.ts';

/**
 * The dashboard in real Chromium against a real `firn devnet` (processes, anvil, simulated TEE):
 * the state file names the dashboard's URL; the page lists every node's Enclave ID and the job run
 * here, checks its Work Proof in the browser, and, once the requester loads its KEM key in the page,
 * plots the training loss decrypted there, while no request the page makes carries that key.
 * Skipped, with the reason, when /usr/bin/chromium is missing (apt-get install chromium).
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const SHOTS = join(repoRoot(), 'test-results', 'dashboard');

describe.skipIf(!hasChromium)(
  `dashboard in Chromium${hasChromium ? '' : ` (skipped: ${CHROMIUM} is missing; apt-get install chromium)`}`,
  () => {
    let devnet: ChildProcess | undefined;
    let browser: Browser | undefined;
    let dir: string;
    let stateFile: string;
    let devnetLog = '';

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'firn-dash-'));
      stateFile = join(dir, 'state.json');
      mkdirSync(SHOTS, { recursive: true });
      devnet = spawn(
        process.execPath,
        [
          join(repoRoot(), 'packages', 'cli', 'bin', 'firn.mjs'),
          'devnet',
          '--dir',
          join(dir, 'net'),
          '--state-file',
          stateFile,
          '--nodes',
          '2',
          '--gpu-nodes',
          '1',
          '--verifiers',
          '1',
          '--no-demo',
          '--ready-timeout',
          '150',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      devnet.stdout!.on('data', (b: Buffer) => (devnetLog += b.toString()));
      devnet.stderr!.on('data', (b: Buffer) => (devnetLog += b.toString()));
      const until = Date.now() + 170_000;
      while (!existsSync(stateFile) || !devnetLog.includes('network is up')) {
        if (devnet.exitCode !== null) throw new Error(`firn devnet exited: ${devnetLog.slice(-2000)}`);
        if (Date.now() > until) throw new Error(`firn devnet not up in time: ${devnetLog.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      const { chromium } = await import('playwright-core');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage'],
      });
    }, 200_000);

    afterAll(async () => {
      await browser?.close();
      if (devnet && devnet.exitCode === null) {
        devnet.kill('SIGINT');
        await new Promise((r) => {
          const t = setTimeout(() => {
            devnet?.kill('SIGKILL');
            r(undefined);
          }, 8000);
          devnet?.once('exit', () => {
            clearTimeout(t);
            r(undefined);
          });
        });
      }
      rmSync(dir, { recursive: true, force: true });
    }, 30_000);

    it('lists every node, then the job with its proof verified in the page; the requester key opens the loss curve and never leaves the page', async () => {
      const state = loadDevnetState(stateFile) as ReturnType<typeof loadDevnetState> & {
        dashboardUrl?: string;
      };
      expect(state.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      expect(devnetLog).toContain(`dashboard on ${state.dashboardUrl}`);
      expect(state.requesterKem?.privateKey).toMatch(/^0x[0-9a-f]{64}$/);

      const page: Page = await browser!.newPage({ viewport: { width: 1500, height: 1100 } });
      const requests: Request[] = [];
      const pageErrors: string[] = [];
      page.on('request', (r) => requests.push(r));
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(state.dashboardUrl!);

      // Every node's Enclave ID, in full, from the chain.
      for (const n of state.nodes)
        await page
          .locator(`#nodes tr[data-enclave-id="${n.enclaveId}"] code.id`)
          .waitFor({ timeout: 30_000 });
      expect(await page.locator('#nodes tbody tr').count()).toBe(state.nodes.length);
      for (const n of state.nodes)
        await page
          .locator(`#nodes tr[data-enclave-id="${n.enclaveId}"] td code`, { hasText: n.url })
          .first()
          .waitFor({ timeout: 10_000 });
      // The last node's composite evidence names its GPU (fetched through the dashboard with a fresh nonce).
      await page.locator('#nodes td', { hasText: 'GPU' }).waitFor({ timeout: 30_000 });
      expect(await page.locator('#votes tr[data-vote="approve"]').count()).toBeGreaterThanOrEqual(
        state.nodes.length,
      );
      await page.screenshot({ path: join(SHOTS, '1-nodes.png'), fullPage: true });

      // A confidential training job through the market, sealed to the devnet requester's KEM key.
      const csv = readFileSync(sharedPath('datasets', 'banknote_authentication.csv'), 'utf8')
        .split('\n')
        .filter((l, i) => l.trim() !== '' && i % 3 === 0) // both classes: the file is sorted by class
        .join('\n');
      const job = await runJob({
        rpcUrl: state.rpcUrl,
        deployment: deploymentFromState(state),
        requesterKey: state.accounts.requester.privateKey,
        requesterKem: {
          privateKey: hexBytes(state.requesterKem!.privateKey, 'kem', 32),
          publicKey: hexBytes(state.requesterKem!.publicKey, 'kem', 32),
        },
        policy: DEV_POLICY,
        ...devnetRoots(state),
        escrow: 10n ** 15n,
        kind: 'training',
        inputs: [{ role: 'dataset', bytes: new TextEncoder().encode(csv), contentType: 'text/csv' }],
        params: {
          task: 'classification',
          hidden: [8],
          epochs: 6,
          batchSize: 32,
          seed: 3,
          validationSplit: 0.2,
        },
      });
      expect(job.proofCheck.ok).toBe(true);

      // Live: the job appears without a reload, and the page's own EIP-712 check of its proof passes.
      const row = page.locator(`#jobs tr[data-job-id="${job.jobId}"]`);
      await row.waitFor({ timeout: 30_000 });
      await row.locator('[data-proof="verified"]').waitFor({ timeout: 30_000 });
      expect(await row.getAttribute('data-status')).toMatch(/Proved|Paid/);

      // The requester loads its key locally; the metrics output is fetched sealed and opened in the page.
      const key = state.requesterKem!.privateKey;
      await page.fill('#requester-key', key);
      await page.click('#requester button[type="submit"]');
      const chart = page.locator(`[data-loss-chart="${job.jobId}"]`);
      await chart.waitFor({ timeout: 30_000 });
      expect(await chart.getAttribute('data-epochs')).toBe('6');
      expect(await chart.locator('canvas').count()).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, '2-job-and-loss-curve.png'), fullPage: true });

      // The key never left the page: no URL, header or body of any request carries it in any encoding.
      const raw = key.slice(2);
      const forms = [
        raw,
        raw.toUpperCase(),
        Buffer.from(raw, 'hex').toString('base64'),
        Buffer.from(raw, 'hex').toString('base64url'),
      ];
      expect(requests.length).toBeGreaterThan(5);
      for (const r of requests) {
        const seen = `${r.url()}\n${JSON.stringify(await r.allHeaders())}\n${r.postData() ?? ''}`;
        for (const f of forms)
          expect(seen.toLowerCase().includes(f.toLowerCase()), `${r.method()} ${r.url()}`).toBe(false);
        // Same origin only: the page talks to the dashboard server, nowhere else.
        expect(new URL(r.url()).origin).toBe(new URL(state.dashboardUrl!).origin);
      }
      expect(pageErrors).toEqual([]);
      await page.close();

      // The same chain model and proof check, run here on the real proof: it passes as the page said,
      // and fails for a job record that differs from what the enclave signed or names another signer.
      const client = createPublicClient({ transport: http(state.rpcUrl) }) as PublicClient;
      const config = (await (await fetch(new URL('config.json', state.dashboardUrl!))).json()) as PageConfig;
      const v = emptyNetwork(BigInt(config.fromBlock));
      while (v.cursor < (await client.getBlockNumber())) await advance(client, config, v);
      expect([...v.nodes.keys()].sort()).toEqual(state.nodes.map((n) => n.enclaveId).sort());
      // The registry keeps endpoints only in events (decision 1140): each is the node's own URL.
      for (const n of state.nodes) expect(v.nodes.get(n.enclaveId)!.endpoint).toBe(n.url);
      const j = v.jobs.get(job.jobId)!;
      expect(await verifyProofInBrowser(client, config, j)).toMatchObject({ ok: true, reasons: [] });
      const other = `0x${'77'.repeat(32)}` as Hex;
      for (const k of [
        'outputCommitment',
        'inputCommitment',
        'workloadHash',
        'measurement',
        'enclaveId',
      ] as const) {
        const r = await verifyProofInBrowser(client, config, { ...j, [k]: other });
        expect(r.ok, k).toBe(false);
      }
      const wrongSigner = await verifyProofInBrowser(client, config, {
        ...j,
        signer: state.accounts.requester.address,
      });
      expect(wrongSigner.ok).toBe(false);
      expect(wrongSigner.reasons.join()).toContain('signer differs');

      // The signed proof must hash to the facts the market stored (decision 1142): another stored
      // hash, another challenge window or another stake snapshot is refused.
      expect(j.factsHash).not.toMatch(/^0x0+$/);
      for (const tamper of [
        { factsHash: other },
        { challengeWindow: j.challengeWindow + 1n },
        { snapshotId: j.snapshotId + 1n },
      ]) {
        const r = await verifyProofInBrowser(client, config, { ...j, ...tamper });
        expect(r.ok, JSON.stringify(Object.keys(tamper))).toBe(false);
        expect(r.reasons.join()).toContain('does not hash to the facts');
      }

      // A server that serves other events than the chain holds: the job's events no longer hash to
      // the stored terms and facts, the page names the mismatch, leaves the fields empty and never
      // shows the proof as verified.
      const forged = emptyNetwork(BigInt(config.fromBlock));
      while (forged.cursor < (await client.getBlockNumber())) await advance(client, config, forged);
      const ev = forged.jobEvents.get(job.jobId)!;
      ev.posted = { ...ev.posted!, workloadHash: other };
      ev.proved = { ...ev.proved!, workUnits: ev.proved!.workUnits + 1n };
      await refreshJob(client, config, forged, job.jobId, forged.cursor);
      const fj = forged.jobs.get(job.jobId)!;
      expect(fj.mismatch).toContain('stored terms hash');
      expect(fj.mismatch).toContain('stored facts hash');
      expect(fj.workloadHash).toMatch(/^0x0+$/);
      expect(fj.workUnits).toBe(0n);
      const forgedCheck = await verifyProofInBrowser(client, config, fj);
      expect(forgedCheck.ok).toBe(false);
      expect(forgedCheck.reasons[0]).toContain('inconsistent');
    }, 240_000);
  },
);
