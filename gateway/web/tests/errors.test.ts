import { describe, expect, it } from 'vitest';
import { ApiError, asApiError, toApiError } from '../src/api/errors';

describe('error mapping', () => {
  it('puts each field’s problem beside its field', () => {
    const error = toApiError(400, {
      code: 'invalid_argument',
      message: 'the request is invalid',
      details: [
        { field: 'email', problem: 'not an email address' },
        { field: 'price.currency', problem: 'not a currency code' },
        { field: 'items[2].quantity', problem: 'at most 99' },
      ],
    });
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.code).toBe('invalid_argument');
    expect(error.message).toBe('the request is invalid');
    expect(error.field('email')).toBe('not an email address');
    // A form field covers the problems of its nested fields.
    expect(error.field('price')).toBe('not a currency code');
    expect(error.field('price.currency')).toBe('not a currency code');
    expect(error.field('items')).toBe('at most 99');
    expect(error.field('password')).toBeUndefined();
  });

  it('keeps the first problem of a field named twice', () => {
    const error = toApiError(400, {
      code: 'invalid_argument',
      message: 'x',
      details: [
        { field: 'password', problem: 'too short' },
        { field: 'password', problem: 'too common' },
      ],
    });
    expect(error.field('password')).toBe('too short');
  });

  it('shows the platform’s message, but not the text of an internal error', () => {
    expect(toApiError(409, { code: 'conflict', message: 'the code is taken', details: [] }).message).toBe(
      'the code is taken',
    );
    const internal = toApiError(500, { code: 'internal', message: 'panic at store.rs:12', details: [] });
    expect(internal.message).not.toContain('store.rs');
    expect(internal.message).toMatch(/on our side/);
  });

  it('makes sense of answers without the error body', () => {
    expect(toApiError(401, null).code).toBe('unauthenticated');
    expect(toApiError(403, 'Forbidden').code).toBe('permission_denied');
    expect(toApiError(404, undefined).code).toBe('not_found');
    expect(toApiError(429, {}).message).toMatch(/Too many requests/);
    expect(toApiError(503, '<html>').code).toBe('unavailable');
    expect(toApiError(502, null).code).toBe('internal');
  });

  it('turns a failed fetch into a network error', () => {
    const error = asApiError(new TypeError('Failed to fetch'));
    expect(error.code).toBe('network');
    expect(error.status).toBe(0);
    expect(error.message).toMatch(/connection/);
  });
});
