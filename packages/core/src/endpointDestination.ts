import { BlockList, isIP } from 'node:net';
import { FirnError, type FirnErrorOptions } from './errors.ts';

/**
 * Where a request to a node-chosen URL (a registered endpoint, and anything reached from it) may
 * go (docs/decisions/1832-node-facing-fetches.md). A verifier runs next to services only it can
 * reach (cloud metadata, its RPC node, a PCCS, admin ports): a node that registers such an address,
 * or whose name resolves to one, must get no request there, or the verifier's votes and disputes
 * become a scanner of the verifier's own network.
 */

/** IPv4 ranges never connected to, by the reason named in the refusal (IANA special-purpose registry). */
const IPV4_FORBIDDEN: readonly (readonly [string, number, string])[] = [
  ['0.0.0.0', 8, 'unspecified ("this network", RFC 1122)'],
  ['10.0.0.0', 8, 'private (RFC 1918)'],
  ['100.64.0.0', 10, 'shared address space (CGNAT, RFC 6598)'],
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata lives at 169.254.169.254)'],
  ['172.16.0.0', 12, 'private (RFC 1918)'],
  ['192.0.0.0', 24, 'IETF protocol assignments (RFC 6890)'],
  ['192.0.2.0', 24, 'documentation (RFC 5737)'],
  ['192.168.0.0', 16, 'private (RFC 1918)'],
  ['198.18.0.0', 15, 'benchmarking (RFC 2544)'],
  ['198.51.100.0', 24, 'documentation (RFC 5737)'],
  ['203.0.113.0', 24, 'documentation (RFC 5737)'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved (and the broadcast address)'],
  // A public address that Azure answers inside every VM (WireServer: the VM agent's and metadata
  // channel); every other cloud's metadata service is link-local or CGNAT, covered above.
  ['168.63.129.16', 32, 'cloud metadata (Azure WireServer)'],
];

/** IPv6 ranges never connected to. The embedded-IPv4 forms are added from IPV4_FORBIDDEN below. */
const IPV6_FORBIDDEN: readonly (readonly [string, number, string])[] = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'IPv4-compatible (deprecated, RFC 4291)'],
  ['64:ff9b:1::', 48, 'local-use IPv4/IPv6 translation (RFC 8215)'],
  ['100::', 64, 'discard-only (RFC 6666)'],
  ['2001:db8::', 32, 'documentation (RFC 3849)'],
  // AWS's IPv6 metadata address fd00:ec2::254 is in it.
  ['fc00::', 7, 'unique local (ULA, RFC 4193; cloud metadata lives at fd00:ec2::254)'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'site-local (deprecated)'],
  ['ff00::', 8, 'multicast'],
];

/**
 * IPv6 prefixes that carry an IPv4 address in their low bits and reach it: IPv4-mapped (::ffff:0:0/96,
 * which BlockList matches against the IPv4 rules itself), IPv4-translated (SIIT, ::ffff:0:0:0/96),
 * the NAT64 well-known prefix (64:ff9b::/96) and 6to4 (2002::/16, the IPv4 address in bits 16..47).
 * A forbidden IPv4 address written in one of them is forbidden too.
 */
const EMBEDDING: readonly { prefix: (hi: number, lo: number) => string; bits: number; name: string }[] = [
  { prefix: (hi, lo) => `::ffff:0:${hex(hi)}:${hex(lo)}`, bits: 96, name: 'IPv4-translated' },
  { prefix: (hi, lo) => `64:ff9b::${hex(hi)}:${hex(lo)}`, bits: 96, name: 'NAT64' },
  { prefix: (hi, lo) => `2002:${hex(hi)}:${hex(lo)}::`, bits: 16, name: '6to4' },
];

const hex = (n: number) => n.toString(16);

interface Rules {
  list: BlockList;
  reason: string;
}

let rules: Rules[] | undefined;

/** One BlockList per reason, in the order above: the first that matches names the refusal. Built on first use. */
function forbiddenRules(): readonly Rules[] {
  if (rules !== undefined) return rules;
  const built: Rules[] = [];
  const add = (reason: string, fill: (b: BlockList) => void) => {
    const list = new BlockList();
    fill(list);
    built.push({ list, reason });
  };
  for (const [a, bits, reason] of IPV4_FORBIDDEN)
    add(reason, (b) => {
      b.addSubnet(a, bits, 'ipv4');
      const [p, q, r, s] = a.split('.').map(Number) as [number, number, number, number];
      for (const e of EMBEDDING) b.addSubnet(e.prefix((p << 8) | q, (r << 8) | s), e.bits + bits, 'ipv6');
    });
  for (const [a, bits, reason] of IPV6_FORBIDDEN) add(reason, (b) => b.addSubnet(a, bits, 'ipv6'));
  rules = built;
  return built;
}

/**
 * Why a connection to the IP address `ip` (dotted IPv4 or IPv6 text, without brackets or zone) is
 * never made, or undefined when it is a public unicast address. IPv4 written inside IPv6
 * (::ffff:127.0.0.1, 64:ff9b::7f00:1, 2002:7f00:1::) is judged as the IPv4 address. Text that is
 * not an IP address is refused ("not an IP address"): a caller passes what a resolver returned.
 */
export function forbiddenAddressReason(ip: string): string | undefined {
  const family = isIP(ip);
  if (family === 0) return 'not an IP address';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const r of forbiddenRules()) if (r.list.check(ip, type)) return r.reason;
  return undefined;
}

/** What a URL check is told: whether private destinations are allowed (devnets and tests only). */
export interface EndpointDestinationOptions {
  /**
   * Allow loopback, private, link-local and the other forbidden destinations (default false). For
   * a devnet or a test whose nodes listen on 127.0.0.1; never on a verifier that shares a network
   * with anything it does not want a node to reach.
   */
  allowPrivateEndpoints?: boolean;
}

/**
 * A node-chosen URL refused before any request: its host is a forbidden address (details.by:
 * 'url', decided from the URL alone, the same on every machine), or its name resolved to one
 * (details.by: 'dns', decided by this machine's resolver). details: url, reason, address.
 */
export class EndpointForbiddenError extends FirnError {
  override readonly name = 'EndpointForbiddenError';
  constructor(
    url: string,
    reason: string,
    by: 'url' | 'dns',
    address: string,
    options: FirnErrorOptions = {},
  ) {
    super(
      'E_ENDPOINT_FORBIDDEN',
      by === 'url'
        ? `${url}: the host ${address} is ${reason}; no request is sent there`
        : `${url}: the host resolved to ${address}, which is ${reason}; no request is sent there`,
      { ...options, details: { ...options.details, url, reason, by, address } },
    );
  }
}

/** True for `localhost` and names under `.localhost` (RFC 6761 §6.3: always loopback). */
function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

/**
 * Parse a node-chosen URL and check what can be checked before any name is resolved: http(s)
 * only (E_INVALID_INPUT otherwise), and a host that is an IP address (the WHATWG parser has
 * already turned 2130706433, 0x7f.1 and 017700000001 into 127.0.0.1) or a loopback name must
 * not be forbidden (EndpointForbiddenError, by 'url'). A name is checked when it is resolved,
 * at connection time (fetchFromNode's lookup): the address checked is the address connected to.
 */
export function checkEndpointUrl(url: string | URL, opts: EndpointDestinationOptions = {}): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new FirnError('E_INVALID_INPUT', `not a URL: ${JSON.stringify(String(url).slice(0, 200))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new FirnError('E_INVALID_INPUT', `${u.origin}: a node endpoint must be http(s), not ${u.protocol}`);
  if (opts.allowPrivateEndpoints === true) return u;
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  if (isIP(host) !== 0) {
    const reason = forbiddenAddressReason(host);
    if (reason !== undefined) throw new EndpointForbiddenError(u.href, reason, 'url', host);
  } else if (isLoopbackName(host))
    throw new EndpointForbiddenError(u.href, 'a loopback name (RFC 6761)', 'url', host);
  return u;
}
