import { describe, expect, it } from 'vitest';
import { presentedToken } from './auth.js';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('presentedToken', () => {
  it('reads a bearer token', () => {
    expect(presentedToken('Bearer abc.DEF-123')).toBe('abc.DEF-123');
    expect(presentedToken('bearer abc')).toBe('abc');
  });

  it('reads the password of Basic auth, whatever the user name, colons in the password kept', () => {
    expect(presentedToken(basic('admin', 'tok:en'))).toBe('tok:en');
    expect(presentedToken(basic('', 'token'))).toBe('token');
  });

  it('finds nothing in a missing, malformed or other-scheme header', () => {
    expect(presentedToken(undefined)).toBeUndefined();
    expect(presentedToken('Bearer ')).toBeUndefined();
    expect(presentedToken('Bearer two words')).toBeUndefined();
    expect(presentedToken(`Basic ${Buffer.from('no-colon').toString('base64')}`)).toBeUndefined();
    expect(presentedToken('Digest username="x"')).toBeUndefined();
  });
});
