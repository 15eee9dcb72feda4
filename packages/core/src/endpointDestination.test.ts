import { describe, expect, it } from 'vitest';
import { checkEndpointUrl, EndpointForbiddenError, forbiddenAddressReason } from './endpointDestination.ts';

describe('forbiddenAddressReason', () => {
  it.each([
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['10.0.0.1', 'private (RFC 1918)'],
    ['10.255.255.255', 'private (RFC 1918)'],
    ['172.16.0.1', 'private (RFC 1918)'],
    ['172.31.255.254', 'private (RFC 1918)'],
    ['192.168.1.1', 'private (RFC 1918)'],
    ['100.64.0.1', 'shared address space (CGNAT'],
    ['100.127.255.254', 'shared address space (CGNAT'],
    ['100.100.100.200', 'shared address space (CGNAT'], // Alibaba Cloud's metadata service
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.169.254', 'link-local'],
    ['169.254.0.1', 'link-local'],
    ['168.63.129.16', 'cloud metadata (Azure WireServer)'],
    ['192.0.0.170', 'IETF protocol assignments'],
    ['192.0.2.1', 'documentation'],
    ['198.18.0.1', 'benchmarking'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['255.255.255.255', 'reserved'],
  ])('IPv4 %s is refused (%s)', (ip, reason) => {
    expect(forbiddenAddressReason(ip)).toContain(reason);
  });

  it.each([
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['fc00::1', 'unique local'],
    ['fd12:3456::1', 'unique local'],
    ['fd00:ec2::254', 'unique local'], // AWS's IPv6 metadata address
    ['fe80::1', 'link-local'],
    ['febf::1', 'link-local'],
    ['fec0::1', 'site-local'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'documentation'],
    ['100::1', 'discard-only'],
    ['64:ff9b:1::1', 'local-use IPv4/IPv6 translation'],
    ['::7f00:1', 'IPv4-compatible'],
  ])('IPv6 %s is refused (%s)', (ip, reason) => {
    expect(forbiddenAddressReason(ip)).toContain(reason);
  });

  it.each([
    // IPv4-mapped, both notations.
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['0:0:0:0:0:ffff:a9fe:a9fe', 'link-local'],
    ['::ffff:10.1.2.3', 'private (RFC 1918)'],
    ['::ffff:192.168.0.1', 'private (RFC 1918)'],
    // IPv4-translated (SIIT), NAT64 and 6to4 carry the IPv4 address they reach.
    ['::ffff:0:7f00:1', 'loopback'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['64:ff9b::169.254.169.254', 'link-local'],
    ['64:ff9b::a00:1', 'private (RFC 1918)'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:c0a8:101::', 'private (RFC 1918)'],
    ['2002:a9fe:a9fe:1234::5', 'link-local'],
  ])('IPv4 written in IPv6, %s, is judged as the IPv4 address (%s)', (ip, reason) => {
    expect(forbiddenAddressReason(ip)).toContain(reason);
  });

  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '93.184.216.34',
    '100.63.255.255', // just below CGNAT
    '100.128.0.0', // just above CGNAT
    '172.15.255.255', // just below 172.16/12
    '172.32.0.0', // just above
    '169.253.255.255',
    '11.0.0.1',
    '223.255.255.255',
    '168.63.129.17',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808', // NAT64 of 8.8.8.8: a DNS64 resolver's answer for a public IPv4-only name
    '2002:808:808::1',
  ])('a public address %s is allowed', (ip) => {
    expect(forbiddenAddressReason(ip)).toBeUndefined();
  });

  it('text that is not an IP address is refused', () => {
    expect(forbiddenAddressReason('localhost')).toBe('not an IP address');
    expect(forbiddenAddressReason('')).toBe('not an IP address');
    expect(forbiddenAddressReason('127.1')).toBe('not an IP address');
  });
});

describe('checkEndpointUrl', () => {
  const refused = (url: string) => {
    try {
      checkEndpointUrl(url);
    } catch (e) {
      return e as EndpointForbiddenError;
    }
    return undefined;
  };

  it.each([
    ['http://127.0.0.1:8080', '127.0.0.1', 'loopback'],
    // Forms the WHATWG URL parser turns into 127.0.0.1 (decimal, hex, octal, short).
    ['http://2130706433/', '127.0.0.1', 'loopback'],
    ['http://0x7f000001/', '127.0.0.1', 'loopback'],
    ['http://0x7f.1/', '127.0.0.1', 'loopback'],
    ['http://017700000001/', '127.0.0.1', 'loopback'],
    ['http://0177.0.0.01/', '127.0.0.1', 'loopback'],
    ['http://127.1/', '127.0.0.1', 'loopback'],
    ['http://0/', '0.0.0.0', 'unspecified'],
    ['https://169.254.169.254/latest/meta-data/', '169.254.169.254', 'link-local'],
    ['http://0xa9fea9fe/', '169.254.169.254', 'link-local'],
    ['http://[::1]:9/', '::1', 'loopback'],
    ['http://[0:0:0:0:0:0:0:1]/', '::1', 'loopback'],
    ['http://[::ffff:127.0.0.1]/', '::ffff:7f00:1', 'loopback'],
    ['http://[::ffff:a9fe:a9fe]/', '::ffff:a9fe:a9fe', 'link-local'],
    ['http://[fd00:ec2::254]/', 'fd00:ec2::254', 'unique local'],
    ['http://[fe80::1]/', 'fe80::1', 'link-local'],
    ['http://10.0.0.5:8545/', '10.0.0.5', 'private'],
    ['http://localhost:8080/', 'localhost', 'loopback name'],
    ['http://LOCALHOST./', 'localhost.', 'loopback name'],
    ['http://api.localhost/', 'api.localhost', 'loopback name'],
  ])('%s is refused before any request (host %s, %s)', (url, address, reason) => {
    const e = refused(url);
    expect(e).toBeInstanceOf(EndpointForbiddenError);
    expect(e?.code).toBe('E_ENDPOINT_FORBIDDEN');
    expect(e?.details).toMatchObject({ by: 'url', address, url: new URL(url).href });
    expect(e?.details?.reason).toContain(reason);
    // The message names the URL and the reason.
    expect(e?.message).toContain(new URL(url).href);
    expect(e?.message).toContain(String(e?.details?.reason));
  });

  it('names and public addresses pass (a name is checked when it is resolved)', () => {
    for (const url of [
      'https://node1.example.org',
      'http://8.8.8.8:8080/x',
      'http://[2606:4700:4700::1111]/',
      'http://metadata.google.internal/',
    ])
      expect(checkEndpointUrl(url).href).toBe(new URL(url).href);
  });

  it('allowPrivateEndpoints lets every address through; the scheme is still checked', () => {
    expect(checkEndpointUrl('http://127.0.0.1:1', { allowPrivateEndpoints: true }).host).toBe('127.0.0.1:1');
    expect(() => checkEndpointUrl('file:///etc/passwd', { allowPrivateEndpoints: true })).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
    expect(() => checkEndpointUrl('not a url')).toThrow(expect.objectContaining({ code: 'E_INVALID_INPUT' }));
    expect(() => checkEndpointUrl('ftp://8.8.8.8/')).toThrow(
      expect.objectContaining({ code: 'E_INVALID_INPUT' }),
    );
  });
});
