import { createHash, X509Certificate } from 'node:crypto';

/**
 * The AWS Nitro Enclaves Root G1 certificate (CN=aws.nitro-enclaves, P-384, valid 2019-10-28 to
 * 2049-10-28), as AWS publishes it in AWS_NitroEnclaves_Root-G1.zip ("Verifying the root of trust",
 * docs.aws.amazon.com/enclaves/latest/user/verify-root.html). The same PEM is committed with its
 * provenance in vectors/nitro/aws-nitro-enclaves-root-g1.pem; a test keeps the two equal.
 */
export const AWS_NITRO_ROOT_G1_PEM = `-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
`;

/**
 * SHA-256 over the root certificate's DER, as AWS's verify-root page publishes it
 * (64:1A:03:21:A3:E2:44:EF:E4:56:46:31:95:D6:06:31:7E:D7:CD:CC:3C:17:56:E0:98:93:F3:C6:8F:79:BB:5B).
 */
export const AWS_NITRO_ROOT_G1_SHA256 = '641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b';

/** The pinned root as DER; checked against the published fingerprint once, at load. */
export const AWS_NITRO_ROOT_G1_DER: Uint8Array = (() => {
  const der = new Uint8Array(new X509Certificate(AWS_NITRO_ROOT_G1_PEM).raw);
  const fp = createHash('sha256').update(der).digest('hex');
  if (fp !== AWS_NITRO_ROOT_G1_SHA256)
    throw new Error('pinned AWS Nitro root does not match its fingerprint');
  return der;
})();
