/** What the operations console shows of the dead letters (GET /api/v1/admin/dead-letters). */

/** A 64-bit count or sequence as the API writes it (a string in canonical JSON), as a number
 * for display and comparison; 0 when absent or not a number. */
export function count(value: string | number | undefined | null): number {
  const n = typeof value === 'string' ? Number(value) : value;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : 0;
}

/** The consumers that hold dead letters, most first (then by name), and the one chosen by the
 * filter even when it holds none any more, so the filter keeps showing it. */
export function holding<T extends { consumer?: string; dead_letters?: string | number }>(
  consumers: readonly T[],
  chosen = '',
): T[] {
  return consumers
    .filter((c) => count(c.dead_letters) > 0 || (chosen !== '' && c.consumer === chosen))
    .sort(
      (a, b) => count(b.dead_letters) - count(a.dead_letters) || (a.consumer ?? '').localeCompare(b.consumer ?? ''),
    );
}

/** A letter's payload for reading: indented when it is whole and valid JSON, as stored
 * otherwise (a truncated payload is cut mid-value, and is shown as it is). */
export function readablePayload(payload: string | undefined, truncated: boolean | undefined): string {
  const text = payload ?? '';
  if (truncated || text.trim() === '') return text;
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** The announcement after a redrive: "Redriven 1; 0 left". */
export function redriveResult(result: { redriven?: number; remaining?: string | number } | undefined): string {
  return `Redriven ${count(result?.redriven)}; ${count(result?.remaining)} left`;
}
