import type { ComponentChildren, JSX } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, asApiError } from '../api/errors';
import { formatMoney, type Money as MoneyValue } from '../lib/money';

/** Loads data for a page: `data` once loaded, `error` if it failed, `reload` to fetch again. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({
    loading: true,
  });
  const generation = useRef(0);
  const run = useCallback(() => {
    const mine = ++generation.current;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => mine === generation.current && setState({ data, loading: false }),
      (error) => mine === generation.current && setState({ error: asApiError(error), loading: false }),
    );
  }, deps);
  useEffect(run, [run]);
  return { ...state, reload: run, set: (data: T) => setState({ data, loading: false }) };
}

/** Runs a form's action: `busy` meanwhile, `error` (with its field problems) if it failed. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const run = useCallback(async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (e) {
      setError(asApiError(e));
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, setError, run };
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

/** An error for the whole form or page; field problems are shown beside their fields. */
export function ErrorMessage({ error }: { error: ApiError | null | undefined }) {
  if (!error) return null;
  return (
    <div class="alert alert-error" role="alert">
      {error.message}
    </div>
  );
}

export function Notice({ children }: { children: ComponentChildren }) {
  return (
    <div class="alert alert-ok" role="status">
      {children}
    </div>
  );
}

type InputProps = Omit<JSX.HTMLAttributes<HTMLInputElement>, 'label' | 'name'> & {
  label: string;
  name: string;
  /** The field's name in the API's error details, when it differs from `name`. */
  apiField?: string;
  error?: ApiError | null;
  hint?: string;
  type?: string;
  value?: string | number;
  required?: boolean;
  autocomplete?: string;
  min?: number | string;
  max?: number | string;
  step?: number | string;
  maxLength?: number;
  minLength?: number;
  pattern?: string;
  inputMode?: string;
  placeholder?: string;
};

/**
 * A labelled input with its hint and the API's problem with it beside it. Without `onInput`
 * its `value` is only where it starts (what a person types survives the form's re-renders,
 * an error shown included); with `onInput` the caller keeps it.
 */
export function Field({ label, name, apiField, error, hint, value, ...rest }: InputProps) {
  const id = `f-${name}`;
  const problem = error?.field(apiField ?? name);
  const described = [hint ? `${id}-hint` : '', problem ? `${id}-error` : ''].filter(Boolean).join(' ');
  return (
    <div class={`field${problem ? ' field-invalid' : ''}`}>
      <label for={id}>{label}</label>
      <input
        id={id}
        name={name}
        aria-invalid={problem ? 'true' : undefined}
        aria-describedby={described || undefined}
        {...(rest.onInput ? { value } : { defaultValue: value === undefined ? undefined : String(value) })}
        {...rest}
      />
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
      {problem && (
        <small id={`${id}-error`} class="field-error">
          {problem}
        </small>
      )}
    </div>
  );
}

type SelectProps = {
  label: string;
  name: string;
  apiField?: string;
  error?: ApiError | null;
  value?: string;
  required?: boolean;
  onChange?: (value: string) => void;
  children: ComponentChildren;
};

export function Select({ label, name, apiField, error, value, required, onChange, children }: SelectProps) {
  const id = `f-${name}`;
  const problem = error?.field(apiField ?? name);
  return (
    <div class={`field${problem ? ' field-invalid' : ''}`}>
      <label for={id}>{label}</label>
      <select
        id={id}
        name={name}
        value={value}
        required={required}
        aria-invalid={problem ? 'true' : undefined}
        aria-describedby={problem ? `${id}-error` : undefined}
        onChange={(e) => onChange?.((e.currentTarget as HTMLSelectElement).value)}
      >
        {children}
      </select>
      {problem && (
        <small id={`${id}-error`} class="field-error">
          {problem}
        </small>
      )}
    </div>
  );
}

export function Money({ value }: { value: MoneyValue | undefined | null }) {
  return <span class="money">{formatMoney(value)}</span>;
}

export function Status({ value }: { value: string | undefined }) {
  const status = value || 'unknown';
  return <span class={`status status-${status.replace(/[^a-z_]/g, '')}`}>{status.replace(/_/g, ' ')}</span>;
}

export function DateTime({ value }: { value: string | undefined }) {
  if (!value) return <span>—</span>;
  const date = new Date(value);
  return <time dateTime={value}>{date.toLocaleString()}</time>;
}

/** The values of a form's named fields. */
export function formValues(event: Event): Record<string, string> {
  event.preventDefault();
  const form = event.currentTarget as HTMLFormElement;
  const values: Record<string, string> = {};
  new FormData(form).forEach((value, key) => {
    if (typeof value === 'string') values[key] = value;
  });
  return values;
}

/** A short reference to an id for people: its last 8 characters (UUIDv7s share their
 * leading, time-ordered digits, so those would read the same for a day's orders). */
export function shortId(id: string | undefined): string {
  return (id ?? '').slice(-8);
}
