import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { formatEther, type Hex, type PublicClient } from 'viem';
import { LossChart } from './lossChart.ts';
import {
  advance,
  emptyNetwork,
  JOB_STATUS,
  type JobView,
  type NetworkView,
  NODE_STATUS,
  type PageConfig,
  REASON_NAMES,
  TEE_TYPE_NAMES,
  VERIFIER_STATUS,
} from './network.ts';
import { openRequesterOutputs, parseKemPrivateKey, type RequesterJobOutputs } from './requesterOutputs.ts';
import { type BrowserProofCheck, verifyProofInBrowser } from './verifyProofInBrowser.ts';

const INELIGIBLE: Record<number, string> = {
  1: 'not Active',
  2: 'TEE type no longer allowed',
  3: 'measurement revoked',
};
const short = (h: string) => (h.length > 14 ? `${h.slice(0, 8)}…${h.slice(-4)}` : h);
const eth = (wei: bigint) =>
  `${Number(formatEther(wei)).toLocaleString('en', { maximumFractionDigits: 4 })} ETH`;

interface Evidence {
  teeType?: string;
  gpus?: string[];
  error?: string;
}

function countdown(endsAt: bigint, now: number): string {
  if (endsAt === 0n) return '—';
  const left = Number(endsAt) - now;
  if (left <= 0) return 'ended';
  const m = Math.floor(left / 60);
  return `${m}:${String(left % 60).padStart(2, '0')} left`;
}

/** The dashboard page: nodes, verifiers and votes, jobs with in-page proof checks, and a requester's decrypted outputs. */
export function App(props: { config: PageConfig; client: PublicClient }) {
  const { config, client } = props;
  const net = useRef<NetworkView>(emptyNetwork(BigInt(config.fromBlock)));
  const [, setVersion] = useState(0);
  const [error, setError] = useState<string | undefined>();
  const [updatedAt, setUpdatedAt] = useState<number | undefined>();
  const [clock, setClock] = useState(() => Math.floor(Date.now() / 1000));
  const headSeen = useRef<{ chain: bigint; local: number }>({ chain: 0n, local: 0 });
  const proofs = useRef(new Map<Hex, BrowserProofCheck | 'checking'>());
  const evidence = useRef(new Map<Hex, Evidence | 'loading'>());
  const [mine, setMine] = useState<RequesterJobOutputs[] | undefined>();
  const [keyError, setKeyError] = useState<string | undefined>();
  const [opening, setOpening] = useState(false);
  const keyInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    let stop = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const v = net.current;
        let more = true;
        while (more && !stop) {
          const before = v.cursor;
          await advance(client, config, v);
          more = v.cursor < v.head && v.cursor !== before;
        }
        if (v.headTime !== headSeen.current.chain)
          headSeen.current = { chain: v.headTime, local: Date.now() };
        for (const j of v.jobs.values())
          if (j.proofTx && !proofs.current.has(j.jobId)) {
            proofs.current.set(j.jobId, 'checking');
            verifyProofInBrowser(client, config, j)
              .then((r) => proofs.current.set(j.jobId, r))
              .catch((e: unknown) =>
                proofs.current.set(j.jobId, { ok: false, reasons: [(e as Error).message.slice(0, 200)] }),
              )
              .finally(() => setVersion((x) => x + 1));
          }
        for (const n of v.nodes.values())
          if (!evidence.current.has(n.enclaveId) && NODE_STATUS[n.status] === 'Active') {
            evidence.current.set(n.enclaveId, 'loading');
            fetch(`/node/${n.enclaveId}/evidence`)
              .then(async (r) =>
                r.ok ? ((await r.json()) as Evidence) : { error: `node answered ${r.status}` },
              )
              .catch(() => ({ error: 'unreachable' }))
              .then((e) => evidence.current.set(n.enclaveId, e))
              .finally(() => setVersion((x) => x + 1));
          }
        setError(undefined);
        setUpdatedAt(Date.now());
        setVersion((x) => x + 1);
      } catch (e) {
        setError(`cannot read the chain: ${(e as Error).message.split('\n')[0]?.slice(0, 200)}`);
      }
      if (!stop) timer = setTimeout(tick, 1000);
    };
    void tick();
    const clockTimer = setInterval(() => setClock(Math.floor(Date.now() / 1000)), 1000);
    return () => {
      stop = true;
      if (timer) clearTimeout(timer);
      clearInterval(clockTimer);
    };
  }, [client, config]);

  const v = net.current;
  // Chain time now: the head's timestamp plus the time since it was seen (anvil mines only on transactions).
  const chainNow =
    Number(headSeen.current.chain) + Math.max(0, clock - Math.floor(headSeen.current.local / 1000));
  const nodes = [...v.nodes.values()].sort((a, b) => Number(a.registeredBlock - b.registeredBlock));
  const jobs = [...v.jobs.values()].sort((a, b) => Number(b.postedBlock - a.postedBlock));

  async function openMine(e: Event) {
    e.preventDefault();
    setKeyError(undefined);
    const input = keyInput.current;
    if (!input) return;
    let key: Uint8Array;
    try {
      key = parseKemPrivateKey(input.value);
    } catch (err) {
      setKeyError((err as Error).message);
      return;
    }
    setOpening(true);
    const out: RequesterJobOutputs[] = [];
    const proved = jobs.filter((j) => ['Proved', 'Paid'].includes(JOB_STATUS[j.status] ?? ''));
    for (const j of proved) {
      try {
        const r = await openRequesterOutputs(j, key);
        if (r) out.push(r);
      } catch (err) {
        setKeyError(`job ${short(j.jobId)}: ${(err as Error).message}`);
      }
    }
    key.fill(0);
    setMine(out);
    setOpening(false);
  }

  const proofCell = (j: JobView) => {
    const p = proofs.current.get(j.jobId);
    if (!j.proofTx) return html`<span class="muted">—</span>`;
    if (p === undefined || p === 'checking') return html`<span class="muted">checking…</span>`;
    return p.ok
      ? html`<span class="ok" data-proof="verified" title=${`signer ${p.signer}`}>✓ verified in browser</span>`
      : html`<span class="bad" data-proof="failed" title=${p.reasons.join('; ')}>✗ ${p.reasons[0]}</span>`;
  };

  return html`
    <header>
      <h1>firn</h1>
      <span>chain ${config.chainId}</span>
      <span>block <b data-head>${v.head.toString()}</b></span>
      <span>market <code>${config.jobMarket}</code></span>
      <span class=${error ? 'bad' : 'ok'}>${error ?? (updatedAt ? 'live' : 'loading…')}</span>
    </header>

    <section>
      <h2>Nodes <small>${nodes.length}</small></h2>
      <table id="nodes">
        <thead>
          <tr>
            <th>Enclave ID</th><th>TEE</th><th>TCB</th><th>measurement</th><th>status</th><th>stake</th>
            <th>rewards</th><th>liveness</th><th>endpoint</th>
          </tr>
        </thead>
        <tbody>
          ${nodes.map((n) => {
            const ev = evidence.current.get(n.enclaveId);
            const gpus =
              ev && ev !== 'loading' && ev.gpus && ev.gpus.length > 0 ? ` + GPU ${ev.gpus.join(', ')}` : '';
            return html`<tr data-enclave-id=${n.enclaveId}>
              <td><code class="id">${n.enclaveId}</code></td>
              <td>${TEE_TYPE_NAMES[n.teeType] ?? `type ${n.teeType}`}${gpus}</td>
              <td class="muted" title="TCB status and advisories are checked by each verifier and not recorded on chain">
                ${n.teeType === 1 ? 'n/a (simulated)' : 'checked by verifiers'}
              </td>
              <td><code title=${n.measurement}>${short(n.measurement)}</code>
                ${n.measurementAllowed ? html` <span class="ok">allow-listed</span>` : html` <span class="bad">not allow-listed</span>`}</td>
              <td>${NODE_STATUS[n.status] ?? n.status}${
                n.ineligibility && NODE_STATUS[n.status] === 'Active'
                  ? html` <span class="bad">(${INELIGIBLE[n.ineligibility] ?? n.ineligibility})</span>`
                  : ''
              }</td>
              <td>${eth(n.stake)}</td>
              <td>${eth(n.rewardsClaimed)} claimed</td>
              <td>${n.answers} answers${n.lastAnsweredEpoch !== undefined ? `, last epoch ${n.lastAnsweredEpoch}` : ''}</td>
              <td><code>${n.endpoint}</code></td>
            </tr>`;
          })}
        </tbody>
      </table>
    </section>

    <section class="two">
      <div>
        <h2>Verifiers <small>${v.verifiers.size}</small></h2>
        <table id="verifiers">
          <thead><tr><th>address</th><th>status</th><th>stake</th></tr></thead>
          <tbody>
            ${[...v.verifiers.values()].map(
              (x) => html`<tr data-verifier=${x.address}>
                <td><code>${x.address}</code></td><td>${VERIFIER_STATUS[x.status] ?? x.status}</td><td>${eth(x.stake)}</td>
              </tr>`,
            )}
          </tbody>
        </table>
      </div>
      <div>
        <h2>Votes, refusals and disputes <small>${v.votes.length}</small></h2>
        <table id="votes">
          <thead><tr><th>block</th><th>vote</th><th>on</th><th>verifier</th><th>reason</th><th>weight</th></tr></thead>
          <tbody>
            ${v.votes
              .slice(-200)
              .reverse()
              .map(
                (x) => html`<tr data-vote=${x.kind}>
                  <td>${x.blockNumber.toString()}</td>
                  <td class=${x.kind === 'approve' ? 'ok' : 'bad'}>${x.kind}</td>
                  <td><code title=${x.subject}>${short(x.subject)}</code></td>
                  <td><code title=${x.verifier}>${short(x.verifier)}</code></td>
                  <td>${x.kind === 'approve' ? '—' : `${x.reasonCode} ${REASON_NAMES[x.reasonCode] ?? ''}`}</td>
                  <td>${eth(x.weight)}</td>
                </tr>`,
              )}
          </tbody>
        </table>
      </div>
    </section>

    <section>
      <h2>Jobs <small>${jobs.length}</small></h2>
      <table id="jobs">
        <thead><tr><th>job</th><th>status</th><th>escrow</th><th>node</th><th>Work Proof</th><th>challenge window</th><th>payout</th></tr></thead>
        <tbody>
          ${jobs.map(
            (j) => html`<tr data-job-id=${j.jobId} data-status=${JOB_STATUS[j.status]}>
              <td><code class="id">${j.jobId}</code></td>
              <td>${JOB_STATUS[j.status] ?? j.status}</td>
              <td>${eth(j.escrow)}</td>
              <td><code title=${j.enclaveId}>${/^0x0+$/.test(j.enclaveId) ? '—' : short(j.enclaveId)}</code></td>
              <td>${proofCell(j)}</td>
              <td>${JOB_STATUS[j.status] === 'Proved' ? countdown(j.challengeEndsAt, chainNow) : j.challengeEndsAt ? 'closed' : '—'}</td>
              <td>${j.payout !== undefined ? eth(j.payout) : '—'}</td>
            </tr>`,
          )}
        </tbody>
      </table>
    </section>

    <section id="requester">
      <h2>My jobs</h2>
      <p class="muted">
        Paste the X25519 key your outputs are sealed to. It stays in this page's memory: it is never sent,
        stored or logged; outputs are fetched sealed and opened here.
      </p>
      <form onSubmit=${openMine} autocomplete="off">
        <input ref=${keyInput} id="requester-key" type="password" placeholder="0x… KEM private key (32 bytes)" spellcheck="false" size="70" />
        <button type="submit" disabled=${opening}>${opening ? 'opening…' : 'open my jobs'}</button>
      </form>
      ${keyError ? html`<p class="bad" id="requester-error">${keyError}</p>` : ''}
      ${mine !== undefined && mine.length === 0 ? html`<p class="muted" id="requester-none">no proved job has outputs sealed to this key</p>` : ''}
      ${(mine ?? []).map(
        (m) => html`<div class="mine" data-my-job=${m.jobId}>
          <h3><code>${m.jobId}</code></h3>
          <p>${m.outputs.map((o) => `${o.role} (${o.contentType}, ${o.size} bytes)`).join(' · ')}</p>
          ${m.heldOutAccuracy !== undefined ? html`<p>validation accuracy ${(100 * m.heldOutAccuracy).toFixed(1)}%</p>` : ''}
          ${m.history ? html`<${LossChart} history=${m.history} jobId=${m.jobId} />` : ''}
        </div>`,
      )}
    </section>
  `;
}
