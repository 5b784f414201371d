import { describe, expect, it } from 'vitest';
import { formatMoney, minorDigits, parseAmount, toDecimalString } from '../src/lib/money';

describe('money', () => {
  it('knows each currency’s minor units', () => {
    expect(minorDigits('USD')).toBe(2);
    expect(minorDigits('EUR')).toBe(2);
    expect(minorDigits('JPY')).toBe(0);
    expect(minorDigits('KWD')).toBe(3);
  });

  it('turns minor units into exact decimals', () => {
    expect(toDecimalString(1999, 'USD')).toBe('19.99');
    expect(toDecimalString('5', 'USD')).toBe('0.05');
    expect(toDecimalString(0, 'USD')).toBe('0.00');
    expect(toDecimalString(500, 'JPY')).toBe('500');
    expect(toDecimalString(1250, 'KWD')).toBe('1.250');
    // int64 amounts come as strings; no floating point on the way.
    expect(toDecimalString('999999999999', 'USD')).toBe('9999999999.99');
    expect(toDecimalString(-250, 'EUR')).toBe('-2.50');
  });

  it('formats amounts in their currency', () => {
    expect(formatMoney({ currency: 'USD', minor_units: 1999 }, 'en-US')).toBe('$19.99');
    expect(formatMoney({ currency: 'USD', minor_units: '123456789' }, 'en-US')).toBe('$1,234,567.89');
    expect(formatMoney({ currency: 'JPY', minor_units: 500 }, 'en-US')).toBe('¥500');
    expect(formatMoney({ currency: 'EUR', minor_units: 1050 }, 'de-DE')).toBe('10,50\u00a0€');
    expect(formatMoney({ currency: 'KWD', minor_units: 1250 }, 'en-US')).toMatch(/KWD\s1\.250/);
  });

  it('shows a missing amount as zero and a missing money as a dash', () => {
    expect(formatMoney({ currency: 'USD' }, 'en-US')).toBe('$0.00');
    expect(formatMoney(undefined)).toBe('—');
  });

  it('parses what a seller types', () => {
    expect(parseAmount('19.99', 'USD')).toBe(1999n);
    expect(parseAmount('19', 'USD')).toBe(1900n);
    expect(parseAmount(' 1,250.5 ', 'USD')).toBe(125050n);
    expect(parseAmount('500', 'JPY')).toBe(500n);
    expect(parseAmount('5.5', 'JPY')).toBeNull();
    expect(parseAmount('1.999', 'USD')).toBeNull();
    expect(parseAmount('-1', 'USD')).toBeNull();
    expect(parseAmount('abc', 'USD')).toBeNull();
    expect(parseAmount('', 'USD')).toBeNull();
  });
});
