/** The platform's error body (components.schemas.Error in docs/api/openapi.json). */
export interface ErrorBody {
  code: string;
  message: string;
  details?: { field: string; problem: string }[];
}

/** What went wrong with a call, ready to show: one message and the problems of each field. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Field path ("email", "price.currency", "items[2].quantity") to its problem. */
  readonly fields: Record<string, string>;

  constructor(status: number, code: string, message: string, fields: Record<string, string> = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
  }

  /** The problem of one field, or of any field under it ("price" covers "price.currency"). */
  field(name: string): string | undefined {
    if (this.fields[name]) return this.fields[name];
    const nested = Object.keys(this.fields).find(
      (key) => key.startsWith(`${name}.`) || key.startsWith(`${name}[`),
    );
    return nested ? this.fields[nested] : undefined;
  }
}

const FALLBACK: Record<string, string> = {
  invalid_argument: 'Some of what you entered needs another look.',
  unauthenticated: 'Please log in to continue.',
  permission_denied: 'You are not allowed to do that.',
  not_found: 'We could not find that.',
  conflict: 'That changed in the meantime; reload and try again.',
  failed_precondition: 'That cannot be done right now.',
  rate_limited: 'Too many requests; wait a moment and try again.',
  payload_too_large: 'That is too large to send.',
  unavailable: 'The shop is busy right now; try again in a moment.',
  deadline_exceeded: 'That took too long; try again in a moment.',
  internal: 'Something went wrong on our side; try again later.',
  network: 'Could not reach the shop; check your connection and try again.',
};

function isErrorBody(body: unknown): body is ErrorBody {
  return (
    typeof body === 'object' &&
    body !== null &&
    typeof (body as ErrorBody).code === 'string' &&
    typeof (body as ErrorBody).message === 'string'
  );
}

/** The error of an answer with `status` and a parsed `body` (anything the server sent). */
export function toApiError(status: number, body: unknown): ApiError {
  if (isErrorBody(body)) {
    const fields: Record<string, string> = {};
    for (const detail of body.details ?? []) {
      if (detail && typeof detail.field === 'string' && !fields[detail.field]) {
        fields[detail.field] = detail.problem;
      }
    }
    const message =
      body.code === 'internal' || !body.message.trim()
        ? (FALLBACK[body.code] ?? FALLBACK.internal!)
        : body.message;
    return new ApiError(status, body.code, message, fields);
  }
  const code =
    status === 401
      ? 'unauthenticated'
      : status === 403
        ? 'permission_denied'
        : status === 404
          ? 'not_found'
          : status === 429
            ? 'rate_limited'
            : status === 503
              ? 'unavailable'
              : status === 504
                ? 'deadline_exceeded'
                : 'internal';
  return new ApiError(status, code, FALLBACK[code]!);
}

/** The error of a call that got no answer at all. */
export function networkError(): ApiError {
  return new ApiError(0, 'network', FALLBACK.network!);
}

/** Whatever was thrown, as an ApiError for display. */
export function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof TypeError) return networkError();
  return new ApiError(0, 'internal', error instanceof Error ? error.message : String(error));
}
