import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of a throwaway CA, a server certificate for 127.0.0.1 and a client certificate. */
export interface TestCertificates {
  directory: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/**
 * Generates a CA and two certificates it signs with the `openssl` command:
 * one for a server at 127.0.0.1 (as an IP subject alternative name) and one
 * for a client. Keys are unencrypted EC P-256, valid for one day.
 */
export function generateCertificates(): TestCertificates {
  const directory = mkdtempSync(join(tmpdir(), 'feedhub-tls-'));
  const ecKey = (name: string) =>
    openssl(
      ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', name],
      directory,
    );

  ecKey('ca.key');
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-subj',
      '/CN=feedhub test CA',
      '-days',
      '1',
      '-out',
      'ca.pem',
    ],
    directory,
  );

  const sign = (name: string, subject: string, extensions: string) => {
    ecKey(`${name}.key`);
    openssl(
      ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`],
      directory,
    );
    writeFileSync(join(directory, `${name}.ext`), extensions);
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '1',
        '-extfile',
        `${name}.ext`,
        '-out',
        `${name}.pem`,
      ],
      directory,
    );
  };
  sign('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  sign('client', '/CN=feedhub test client', 'extendedKeyUsage=clientAuth\n');

  return {
    directory,
    caCert: join(directory, 'ca.pem'),
    serverCert: join(directory, 'server.pem'),
    serverKey: join(directory, 'server.key'),
    clientCert: join(directory, 'client.pem'),
    clientKey: join(directory, 'client.key'),
  };
}
