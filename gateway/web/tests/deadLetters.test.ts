import { describe, expect, it } from 'vitest';
import { count, holding, readablePayload, redriveResult } from '../src/lib/deadLetters';

describe('dead letters', () => {
  it('reads 64-bit numbers written as strings', () => {
    expect(count('12')).toBe(12);
    expect(count(3)).toBe(3);
    expect(count(undefined)).toBe(0);
    expect(count('')).toBe(0);
    expect(count('x')).toBe(0);
  });

  it('lists the consumers holding letters, most first, and keeps the chosen one', () => {
    const consumers = [
      { consumer: 'a_order_paid', dead_letters: '0' },
      { consumer: 'b_user_registered', dead_letters: '2' },
      { consumer: 'c_user_registered', dead_letters: '2' },
      { consumer: 'd_order_placed', dead_letters: '5' },
      { consumer: 'e_order_shipped' },
    ];
    expect(holding(consumers).map((c) => c.consumer)).toEqual(['d_order_placed', 'b_user_registered', 'c_user_registered']);
    expect(holding(consumers, 'a_order_paid').map((c) => c.consumer)).toEqual([
      'd_order_placed',
      'b_user_registered',
      'c_user_registered',
      'a_order_paid',
    ]);
    expect(holding([])).toEqual([]);
  });

  it('indents a whole JSON payload and leaves the rest as stored', () => {
    expect(readablePayload('{"user_id":"x","n":1}', false)).toBe('{\n  "user_id": "x",\n  "n": 1\n}');
    expect(readablePayload('{"user_id":"x","n":1}', true)).toBe('{"user_id":"x","n":1}');
    expect(readablePayload('{"user_id":', false)).toBe('{"user_id":');
    expect(readablePayload(undefined, false)).toBe('');
  });

  it('says what a redrive did', () => {
    expect(redriveResult({ redriven: 1, remaining: '0' })).toBe('Redriven 1; 0 left');
    expect(redriveResult({ redriven: 3, remaining: '2' })).toBe('Redriven 3; 2 left');
    expect(redriveResult(undefined)).toBe('Redriven 0; 0 left');
  });
});
