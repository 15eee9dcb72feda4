/**
 * RPC URL redaction (decision 1686): one rule for the CLI's journal and error bodies and for every
 * log line (the shared logger passes each string field through redactUrlsIn, decision 1748).
 */

/** What a credential in a URL is replaced with. */
export const REDACTED = '***';

/** A path segment that looks like an API key: 16+ characters of a key alphabet with a digit. */
const KEY_SEGMENT = /^(?=.*[0-9])[A-Za-z0-9_~.-]{16,}$/;

/**
 * A host name label that looks like an API key (decision 1751): 32+ characters of the hex, base58
 * and base64url alphabets ([A-Za-z0-9_-]) with a digit and at most two hyphens. Words joined by
 * hyphens (`my-archive-node-eu-west-1`) and IDN labels (`xn--…`) stay readable.
 */
const KEY_LABEL = /^(?!xn--)(?=.*[0-9])(?!(?:[^-]*-){3})[A-Za-z0-9_-]{32,}$/;

/**
 * An RPC URL without its credentials (decision 1686), for the journal, error messages and printed
 * commands: userinfo (`user:pass@`), every query value (`?apikey=KEY`), the fragment, every path
 * segment that looks like a key (16+ characters of [A-Za-z0-9_~.-] with a digit:
 * `https://host/v2/KEY`) and every host name label that looks like one (KEY_LABEL, decision 1751:
 * `https://KEY.rpc.example/`) become `***`; scheme, the other labels, port and other segments stay,
 * so the user can tell which endpoint is meant. Text that is not a URL is returned as `***` (it may
 * be a key).
 */
export function redactRpcUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return REDACTED;
  }
  const userinfo = u.username !== '' || u.password !== '' ? `${REDACTED}@` : '';
  const hostname = u.hostname
    .split('.')
    .map((l) => (KEY_LABEL.test(l) ? REDACTED : l))
    .join('.');
  const host = u.port === '' ? hostname : `${hostname}:${u.port}`;
  const path = u.pathname
    .split('/')
    .map((s) => (KEY_SEGMENT.test(decoded(s)) ? REDACTED : s))
    .join('/');
  const query = [...u.searchParams.keys()].map((k) => `${encodeURIComponent(k)}=${REDACTED}`).join('&');
  return `${u.protocol}//${userinfo}${host}${path === '/' && url.indexOf('/', u.protocol.length + 2) < 0 ? '' : path}${query ? `?${query}` : ''}${u.hash ? `#${REDACTED}` : ''}`;
}

/** Whether `url` carries anything redactRpcUrl removes. */
export function hasCredentials(url: string): boolean {
  return redactRpcUrl(url) !== url;
}

/** Every http(s) or ws(s) URL in `text` through redactRpcUrl (error messages, log lines). */
export function redactUrlsIn(text: string): string {
  return text.replace(/\b(?:https?|wss?):\/\/[^\s'"<>`]+/gi, (m) => {
    // Trailing punctuation of the sentence is not part of the URL.
    const tail = /[.,;:)\]]+$/.exec(m)?.[0] ?? '';
    return redactRpcUrl(m.slice(0, m.length - tail.length)) + tail;
  });
}

/** A path segment percent-decoded; a malformed escape is kept as it is (it is tested as typed). */
function decoded(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Longest text errorLogText returns (a log field, not a document). */
const MAX_LOG_ERROR_CHARS = 500;

/**
 * A thrown value as text fit for a log field: viem's `shortMessage` (one line, without the
 * request body and the `URL:` detail block) when present, else `message`, else `String(e)`; every
 * URL in it through redactUrlsIn, cut to 500 characters. Never throws.
 */
export function errorLogText(e: unknown): string {
  let text: string;
  try {
    const o = e as { shortMessage?: unknown; message?: unknown } | null;
    text =
      typeof o?.shortMessage === 'string' && o.shortMessage !== ''
        ? o.shortMessage
        : typeof o?.message === 'string'
          ? o.message
          : String(e);
  } catch {
    text = 'unprintable error';
  }
  return redactUrlsIn(text).slice(0, MAX_LOG_ERROR_CHARS);
}
