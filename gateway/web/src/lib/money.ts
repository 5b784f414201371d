/** Money as the API carries it: an ISO 4217 code and an amount in the currency's minor units. */
export interface Money {
  currency: string;
  /** int64 on the wire: a JSON number or a decimal string. Missing means zero. */
  minor_units?: string | number;
}

const digitsCache = new Map<string, number>();

/** How many minor-unit digits a currency has: 2 for USD and EUR, 0 for JPY, 3 for KWD. */
export function minorDigits(currency: string): number {
  const cached = digitsCache.get(currency);
  if (cached !== undefined) return cached;
  let digits = 2;
  try {
    digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    // An unknown code: keep two digits rather than fail the page.
  }
  digitsCache.set(currency, digits);
  return digits;
}

/** The exact decimal text of an amount in minor units: 1999 USD is "19.99", 500 JPY "500". */
export function toDecimalString(minorUnits: string | number | bigint, currency: string): string {
  const digits = minorDigits(currency);
  let units = BigInt(typeof minorUnits === 'number' ? Math.trunc(minorUnits) : minorUnits);
  const negative = units < 0n;
  if (negative) units = -units;
  const text = units.toString().padStart(digits + 1, '0');
  const whole = text.slice(0, text.length - digits);
  const fraction = text.slice(text.length - digits);
  return `${negative ? '-' : ''}${whole}${digits > 0 ? `.${fraction}` : ''}`;
}

/** An amount for people: "$19.99", "¥500", "KWD 1.250", in the given locale. */
export function formatMoney(money: Money | undefined | null, locale?: string): string {
  if (!money || !money.currency) return '—';
  const digits = minorDigits(money.currency);
  const decimal = toDecimalString(money.minor_units ?? 0, money.currency);
  const format = new Intl.NumberFormat(locale, {
    style: 'currency',
    currency: money.currency,
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  // A decimal string is formatted exactly (no binary floating point on the way).
  return format.format(decimal as unknown as number);
}

/**
 * The minor units of an amount a person typed ("19.99", "19", "1,250.5") in a currency; null
 * when it is not an amount or has more decimals than the currency.
 */
export function parseAmount(text: string, currency: string): bigint | null {
  const digits = minorDigits(currency);
  const cleaned = text.trim().replace(/[,\s]/g, '');
  const match = /^(\d{1,13})(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return null;
  const whole = match[1] ?? '0';
  const fraction = match[2] ?? '';
  if (fraction.length > digits) return null;
  return BigInt(whole + fraction.padEnd(digits, '0'));
}
