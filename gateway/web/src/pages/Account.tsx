import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, call, login, type Schema } from '../api/client';
import { AddressForm } from '../components/AddressForm';
import { ErrorMessage, Field, Loading, Notice, formValues, useAction, useLoad } from '../components/ui';
import { loadCart } from '../lib/cart';
import { safeNext } from '../lib/guards';

/** After logging in: merge this tab's guest cart into the user's, then go on. */
async function afterLogin(route: (url: string) => void, next: string | undefined) {
  await loadCart().catch(() => null);
  route(safeNext(next, '/'));
}

export function LoginPage() {
  const { route, query } = useLocation();
  const action = useAction();
  const submit = async (event: Event) => {
    const v = formValues(event);
    const ok = await action.run(() => login(v.email ?? '', v.password ?? '').then(() => true));
    if (ok) await afterLogin(route, query.next);
  };
  return (
    <section class="narrow">
      <h1>Log in</h1>
      <form onSubmit={submit} aria-label="Log in">
        <ErrorMessage error={action.error} />
        <Field label="Email" name="email" type="email" required autocomplete="email" maxLength={254} error={action.error} />
        <Field label="Password" name="password" type="password" required autocomplete="current-password" maxLength={128} error={action.error} />
        <button type="submit" disabled={action.busy}>
          {action.busy ? 'Logging in…' : 'Log in'}
        </button>
      </form>
      <p>
        <a href="/forgot-password">Forgot your password?</a> ·{' '}
        <a href={`/register${query.next ? `?next=${encodeURIComponent(query.next)}` : ''}`}>Create an account</a>
      </p>
    </section>
  );
}

export function RegisterPage() {
  const { route, query } = useLocation();
  const action = useAction();
  const submit = async (event: Event) => {
    const v = formValues(event);
    const email = v.email ?? '';
    const password = v.password ?? '';
    const ok = await action.run(async () => {
      await call(() => api.POST('/api/v1/auth/register', { body: { email, password } }));
      // The answer is the same whether or not the email was taken; logging in tells.
      await login(email, password);
      return true;
    });
    if (ok) await afterLogin(route, query.next);
  };
  return (
    <section class="narrow">
      <h1>Create an account</h1>
      <form onSubmit={submit} aria-label="Create an account">
        <ErrorMessage error={action.error} />
        <Field label="Email" name="email" type="email" required autocomplete="email" maxLength={254} error={action.error} />
        <Field
          label="Password"
          name="password"
          type="password"
          required
          autocomplete="new-password"
          minLength={12}
          maxLength={128}
          hint="At least 12 characters."
          error={action.error}
        />
        <button type="submit" disabled={action.busy}>
          {action.busy ? 'Creating…' : 'Create account'}
        </button>
      </form>
      <p>
        Have an account? <a href={`/login${query.next ? `?next=${encodeURIComponent(query.next)}` : ''}`}>Log in</a>
      </p>
    </section>
  );
}

export function ForgotPasswordPage() {
  const action = useAction();
  const [sent, setSent] = useState(false);
  const submit = async (event: Event) => {
    const { email } = formValues(event);
    const ok = await action.run(() =>
      call(() => api.POST('/api/v1/auth/password-reset/request', { body: { email: email ?? '' } })),
    );
    if (ok !== undefined) setSent(true);
  };
  return (
    <section class="narrow">
      <h1>Reset your password</h1>
      {sent ? (
        <Notice>If an account uses that email, a link to reset its password is on its way.</Notice>
      ) : (
        <form onSubmit={submit} aria-label="Reset your password">
          <ErrorMessage error={action.error} />
          <Field label="Email" name="email" type="email" required autocomplete="email" maxLength={254} error={action.error} />
          <button type="submit" disabled={action.busy}>
            Send the link
          </button>
        </form>
      )}
    </section>
  );
}

export function ResetPasswordPage() {
  const { query } = useLocation();
  const action = useAction();
  const [done, setDone] = useState(false);
  const submit = async (event: Event) => {
    const { new_password } = formValues(event);
    const ok = await action.run(() =>
      call(() =>
        api.POST('/api/v1/auth/password-reset', {
          body: { token: query.token ?? '', new_password: new_password ?? '' },
        }),
      ),
    );
    if (ok !== undefined) setDone(true);
  };
  return (
    <section class="narrow">
      <h1>Choose a new password</h1>
      {done ? (
        <Notice>
          Your password is changed. <a href="/login">Log in</a>.
        </Notice>
      ) : (
        <form onSubmit={submit} aria-label="Choose a new password">
          <ErrorMessage error={action.error} />
          {action.error?.field('token') && <p class="field-error">The link: {action.error.field('token')}</p>}
          <Field
            label="New password"
            name="new_password"
            type="password"
            required
            autocomplete="new-password"
            minLength={12}
            maxLength={128}
            hint="At least 12 characters."
            error={action.error}
          />
          <button type="submit" disabled={action.busy || !query.token}>
            Set password
          </button>
        </form>
      )}
    </section>
  );
}

export function VerifyEmailPage() {
  const { query } = useLocation();
  const result = useLoad(
    () => call(() => api.POST('/api/v1/auth/verify-email', { body: { token: query.token ?? '' } })),
    [query.token],
  );
  return (
    <section class="narrow">
      <h1>Verify your email</h1>
      {result.loading && <Loading label="Verifying…" />}
      <ErrorMessage error={result.error} />
      {result.data && <Notice>Your email is verified. Thank you.</Notice>}
    </section>
  );
}

type Address = Schema<'address.v1.Address'>;

export function AddressesPage() {
  const list = useLoad(() => call(() => api.GET('/api/v1/addresses')).then((r) => r.addresses ?? []), []);
  const [editing, setEditing] = useState<Address | 'new' | null>(null);
  const action = useAction();
  const remove = async (a: Address) => {
    await action.run(() => call(() => api.DELETE('/api/v1/addresses/{id}', { params: { path: { id: a.id! } } })));
    list.reload();
  };
  const makeDefault = async (a: Address) => {
    await action.run(() =>
      call(() => api.POST('/api/v1/addresses/{id}/default', { params: { path: { id: a.id! } }, body: { id: a.id! } })),
    );
    list.reload();
  };
  return (
    <section>
      <h1>Address book</h1>
      {list.loading && <Loading />}
      <ErrorMessage error={list.error ?? action.error} />
      <ul class="addresses">
        {(list.data ?? []).map((a) => (
          <li key={a.id} class="card">
            <address>
              {a.recipient_name}
              <br />
              {a.line1}
              {a.line2 ? `, ${a.line2}` : ''}
              <br />
              {a.postal_code} {a.city} {a.region} {a.country_code}
            </address>
            {a.is_default ? (
              <p class="badge">Default</p>
            ) : (
              <button type="button" class="link" onClick={() => void makeDefault(a)}>
                Make default
              </button>
            )}{' '}
            <button type="button" class="link" onClick={() => setEditing(a)}>
              Edit
            </button>{' '}
            <button type="button" class="link danger" onClick={() => void remove(a)}>
              Delete
            </button>
          </li>
        ))}
      </ul>
      {editing ? (
        <AddressForm
          address={editing === 'new' ? undefined : editing}
          onSaved={() => {
            setEditing(null);
            list.reload();
          }}
        />
      ) : (
        <button type="button" onClick={() => setEditing('new')}>
          Add an address
        </button>
      )}
    </section>
  );
}
