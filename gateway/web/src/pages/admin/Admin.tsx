import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, authorization, call, type Schema } from '../../api/client';
import { toApiError } from '../../api/errors';
import {
  DateTime,
  ErrorMessage,
  Loading,
  Money,
  Notice,
  Select,
  Status,
  formValues,
  shortId,
  useAction,
  useLoad,
} from '../../components/ui';
import { DeadLetters } from './DeadLetters';

const TABS = [
  ['services', 'Services'],
  ['sagas', 'Sagas'],
  ['dead-letters', 'Dead letters'],
  ['shops', 'Shop approval'],
  ['reviews', 'Review moderation'],
  ['settings', 'Settings and flags'],
  ['payments', 'Payments'],
] as const;
type TabName = (typeof TABS)[number][0];

export function AdminPage({ tab }: { tab?: string }) {
  const current: TabName = TABS.find(([t]) => t === tab)?.[0] ?? 'sagas';
  return (
    <section>
      <h1>Operations console</h1>
      <nav aria-label="Operations" class="tabs">
        {TABS.map(([t, label]) => (
          <a key={t} href={`/admin/${t}`} aria-current={t === current ? 'page' : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {current === 'services' && <Services />}
      {current === 'sagas' && <Sagas />}
      {current === 'dead-letters' && <DeadLetters />}
      {current === 'shops' && <Shops />}
      {current === 'reviews' && <Reviews />}
      {current === 'settings' && <Settings />}
      {current === 'payments' && <Payments />}
    </section>
  );
}

interface RunningInstance {
  id?: string;
  version?: string;
  health?: string;
  readiness?: string;
  started?: string;
  total_requests?: number | string;
  total_errors?: number | string;
}

interface RunningService {
  name?: string;
  instances?: RunningInstance[];
}

/** GET /api/v1/admin/services (NATS micro discovery), read without the generated client so
 * the page works against gateways that have the route and says so against those that do not. */
function Services() {
  const services = useLoad(async () => {
    const auth = await authorization();
    const response = await fetch('/api/v1/admin/services', { headers: auth ? { Authorization: auth } : {} });
    if (response.status === 404 || response.status === 405) return null;
    const body: unknown = await response.json().catch(() => null);
    if (!response.ok) throw toApiError(response.status, body);
    const list = (body as { services?: RunningService[] } | null)?.services;
    return Array.isArray(list) ? list : [];
  }, []);
  if (services.loading && !services.data) return <Loading />;
  if (services.error) return <ErrorMessage error={services.error} />;
  if (services.data === null) return <p>This gateway does not list its services.</p>;
  return (
    <div>
      <button type="button" class="secondary" onClick={services.reload}>
        Refresh
      </button>
      <table class="data">
        <caption>Services and their instances, from NATS micro discovery</caption>
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Instance</th>
            <th scope="col">Version</th>
            <th scope="col">Health</th>
            <th scope="col">Ready</th>
            <th scope="col">Started</th>
            <th scope="col">Requests</th>
            <th scope="col">Errors</th>
          </tr>
        </thead>
        <tbody>
          {(services.data ?? []).flatMap((s) =>
            (s.instances ?? []).map((i) => (
              <tr key={`${s.name}-${i.id}`}>
                <td data-label="Service">{s.name}</td>
                <td data-label="Instance">
                  <code>{i.id}</code>
                </td>
                <td data-label="Version">{i.version}</td>
                <td data-label="Health">
                  <Status value={i.health} />
                </td>
                <td data-label="Ready">
                  <Status value={i.readiness} />
                </td>
                <td data-label="Started">
                  <DateTime value={i.started} />
                </td>
                <td data-label="Requests">{String(i.total_requests ?? 0)}</td>
                <td data-label="Errors">{String(i.total_errors ?? 0)}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </div>
  );
}

type Saga = Schema<'order.v1.Saga'>;
const SAGA_STATES = ['', 'running', 'waiting', 'compensating', 'stuck', 'failed', 'completed', 'compensated'] as const;

function SagaDetail({ id, onChanged }: { id: string; onChanged: () => void }) {
  const saga = useLoad(() => call(() => api.GET('/api/v1/admin/sagas/{id}', { params: { path: { id } } })), [id]);
  const action = useAction();
  const [done, setDone] = useState<string | null>(null);
  const retry = async () => {
    const ok = await action.run(() =>
      call(() => api.POST('/api/v1/admin/sagas/{id}/retry', { params: { path: { id } }, body: { id } })),
    );
    if (ok) {
      setDone('Retried.');
      saga.reload();
      onChanged();
    }
  };
  const abort = async (event: Event) => {
    const { reason } = formValues(event);
    const ok = await action.run(() =>
      call(() =>
        api.POST('/api/v1/admin/sagas/{id}/abort', { params: { path: { id } }, body: { id, reason: reason ?? '' } }),
      ),
    );
    if (ok) {
      setDone('Aborted: compensating.');
      saga.reload();
      onChanged();
    }
  };
  if (saga.loading && !saga.data) return <Loading />;
  const s = saga.data;
  if (!s) return <ErrorMessage error={saga.error} />;
  const active = ['running', 'waiting', 'stuck', 'failed'].includes(s.state ?? '');
  return (
    <div class="card">
      <h3>
        {s.saga} <Status value={s.state} />
      </h3>
      {s.last_error && <p class="field-error">{s.last_error}</p>}
      {s.refusal_detail && <p>{s.refusal_detail}</p>}
      <table class="data">
        <caption>Steps</caption>
        <thead>
          <tr>
            <th scope="col">Step</th>
            <th scope="col">Phase</th>
            <th scope="col">Outcome</th>
            <th scope="col">Attempts</th>
            <th scope="col">Took</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          {(s.steps ?? []).map((step, i) => (
            <tr key={i}>
              <td data-label="Step">{step.name}</td>
              <td data-label="Phase">{step.phase}</td>
              <td data-label="Outcome">{step.outcome}</td>
              <td data-label="Attempts">{step.attempts}</td>
              <td data-label="Took">{step.duration_ms !== undefined ? `${step.duration_ms} ms` : ''}</td>
              <td data-label="Error">{step.last_error}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {done && <Notice>{done}</Notice>}
      <ErrorMessage error={action.error} />
      {active && (
        <div class="actions">
          <button type="button" onClick={() => void retry()} disabled={action.busy}>
            Retry the current step
          </button>
          <form class="inline-form" onSubmit={abort} aria-label="Abort the saga">
            <div class="field">
              <label for={`abort-${id}`}>Reason to abort</label>
              <input id={`abort-${id}`} name="reason" required maxLength={500} />
            </div>
            <button type="submit" class="danger" disabled={action.busy}>
              Abort
            </button>
          </form>
        </div>
      )}
    </div>
  );
}

function Sagas() {
  const [state, setState] = useState('');
  const [open, setOpen] = useState<string | null>(null);
  const sagas = useLoad(
    () => call(() => api.GET('/api/v1/admin/sagas', { params: { query: { state: state || undefined, page_size: 50 } } })),
    [state],
  );
  return (
    <div>
      <Select label="State" name="saga-state" value={state} onChange={setState}>
        {SAGA_STATES.map((s) => (
          <option key={s} value={s}>
            {s || 'Any'}
          </option>
        ))}
      </Select>
      {sagas.loading && <Loading />}
      <ErrorMessage error={sagas.error} />
      <ul class="saga-list">
        {(sagas.data?.sagas ?? []).map((s: Saga) => (
          <li key={s.id} class="card">
            <button type="button" class="link" aria-expanded={open === s.id} onClick={() => setOpen(open === s.id ? null : s.id!)}>
              {s.saga} {shortId(s.id)}
            </button>{' '}
            <Status value={s.state} /> · step {s.current_step || '—'} · <DateTime value={s.updated_at} />
            {open === s.id && <SagaDetail id={s.id!} onChanged={sagas.reload} />}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Shops() {
  const [status, setStatus] = useState<'pending' | 'active' | 'suspended' | 'closed'>('pending');
  const shops = useLoad(() => call(() => api.GET('/api/v1/shops', { params: { query: { status, page_size: 100 } } })), [status]);
  const action = useAction();
  const approve = async (id: string) => {
    if (await action.run(() => call(() => api.POST('/api/v1/admin/shops/{id}/approve', { params: { path: { id } }, body: { id } }))))
      shops.reload();
  };
  const suspend = async (event: Event, id: string) => {
    const { reason } = formValues(event);
    if (
      await action.run(() =>
        call(() =>
          api.POST('/api/v1/admin/shops/{id}/suspend', { params: { path: { id } }, body: { id, reason: reason ?? '' } }),
        ),
      )
    )
      shops.reload();
  };
  return (
    <div>
      <Select label="Status" name="shop-status" value={status} onChange={(v) => setStatus(v as typeof status)}>
        <option value="pending">Pending approval</option>
        <option value="active">Active</option>
        <option value="suspended">Suspended</option>
        <option value="closed">Closed</option>
      </Select>
      {shops.loading && <Loading />}
      <ErrorMessage error={shops.error ?? action.error} />
      {shops.data && (shops.data.shops ?? []).length === 0 && <p>No shops.</p>}
      <ul>
        {(shops.data?.shops ?? []).map((s) => (
          <li key={s.id} class="card">
            <p>
              <strong>{s.name}</strong> ({s.slug}) · {s.contact_email} · {s.currency} · <Status value={s.status} />
            </p>
            {s.status !== 'active' && s.status !== 'closed' && (
              <button type="button" onClick={() => void approve(s.id!)} disabled={action.busy}>
                Approve<span class="visually-hidden"> {s.name}</span>
              </button>
            )}
            {(s.status === 'active' || s.status === 'pending') && (
              <form class="inline-form" onSubmit={(e) => void suspend(e, s.id!)} aria-label={`Suspend ${s.name}`}>
                <div class="field">
                  <label for={`suspend-${s.id}`}>Reason to suspend</label>
                  <input id={`suspend-${s.id}`} name="reason" required maxLength={500} />
                </div>
                <button type="submit" class="danger" disabled={action.busy}>
                  Suspend
                </button>
              </form>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Reviews() {
  const [queue, setQueue] = useState<'pending' | 'reported' | 'hidden'>('pending');
  const reviews = useLoad(
    () => call(() => api.GET('/api/v1/admin/reviews', { params: { query: { queue, page_size: 50 } } })),
    [queue],
  );
  const action = useAction();
  const moderate = async (id: string, act: 'approve' | 'hide') => {
    if (
      await action.run(() =>
        call(() =>
          api.POST('/api/v1/admin/reviews/{id}/moderation', { params: { path: { id } }, body: { id, action: act } }),
        ),
      )
    )
      reviews.reload();
  };
  return (
    <div>
      <Select label="Queue" name="review-queue" value={queue} onChange={(v) => setQueue(v as typeof queue)}>
        <option value="pending">Pending</option>
        <option value="reported">Reported</option>
        <option value="hidden">Hidden</option>
      </Select>
      {reviews.loading && <Loading />}
      <ErrorMessage error={reviews.error ?? action.error} />
      {reviews.data && (reviews.data.reviews ?? []).length === 0 && <p>The queue is empty.</p>}
      <ul>
        {(reviews.data?.reviews ?? []).map((r) => (
          <li key={r.id} class="card">
            <p>
              <strong>{r.title}</strong> · {r.rating}★ · <a href={`/products/${r.product_id}`}>product</a>
              {Number(r.open_reports ?? 0) > 0 && ` · ${r.open_reports} reports`}
            </p>
            {r.body && <p>{r.body}</p>}
            {r.moderation_reason && <p class="hint">Flagged: {r.moderation_reason}</p>}
            <button type="button" onClick={() => void moderate(r.id!, 'approve')} disabled={action.busy}>
              Publish
            </button>{' '}
            <button type="button" class="danger" onClick={() => void moderate(r.id!, 'hide')} disabled={action.busy}>
              Hide
            </button>
          </li>
        ))}
      </ul>
    </div>
  );
}

function SettingRow({ entry, onSaved }: { entry: Schema<'settings.v1.SettingEntry'>; onSaved: () => void }) {
  const action = useAction();
  const key = entry.key?.key ?? '';
  const value = entry.current?.value_json ?? entry.key?.default_json ?? '';
  const isFlag = entry.key?.feature_flag || entry.key?.fault_flag;
  const save = async (event: Event) => {
    const v = formValues(event);
    const ok = await action.run(() =>
      call(() =>
        api.PUT('/api/v1/settings/{key}', {
          params: { path: { key } },
          body: {
            key,
            value_json: v.value_json ?? '',
            reason: v.reason ?? '',
            expected_version: entry.current?.version,
          },
        }),
      ),
    );
    if (ok) onSaved();
  };
  const id = key.replace(/[^a-zA-Z0-9_-]/g, '-');
  return (
    <li class="card">
      <p>
        <code>{key}</code> {entry.key?.feature_flag && <span class="badge">feature flag</span>}
        {entry.key?.fault_flag && <span class="badge warn">fault flag</span>} · version {String(entry.current?.version ?? 0)}
        {entry.current?.updated_by && ` · by ${entry.current.updated_by}`}
      </p>
      <form class="inline-form" onSubmit={save} aria-label={`Change ${key}`}>
        <div class="field grow">
          <label for={`v-${id}`}>Value (JSON)</label>
          <input
            id={`v-${id}`}
            key={String(entry.current?.version ?? 0)}
            name="value_json"
            required
            maxLength={16000}
            defaultValue={value}
            spellcheck={false}
          />
          {isFlag && <small class="hint">true or false</small>}
          {action.error?.field('value_json') && <small class="field-error">{action.error.field('value_json')}</small>}
        </div>
        <div class="field">
          <label for={`r-${id}`}>Reason</label>
          <input id={`r-${id}`} name="reason" required maxLength={500} />
        </div>
        <button type="submit" disabled={action.busy}>
          Save
        </button>
      </form>
      <ErrorMessage error={action.error} />
    </li>
  );
}

function Settings() {
  const settings = useLoad(() => call(() => api.GET('/api/v1/settings')), []);
  return (
    <div>
      {settings.loading && <Loading />}
      <ErrorMessage error={settings.error} />
      <ul class="settings">
        {(settings.data?.settings ?? []).map((s) => (
          <SettingRow key={s.key?.key} entry={s} onSaved={settings.reload} />
        ))}
      </ul>
    </div>
  );
}

function Payments() {
  const { query } = useLocation();
  const payments = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/admin/payments', { params: { query: { order_id: query.order_id || undefined, page_size: 50 } } }),
      ),
    [query.order_id],
  );
  return (
    <div>
      {payments.loading && <Loading />}
      <ErrorMessage error={payments.error} />
      <table class="data">
        <caption>Payments, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Order</th>
            <th scope="col">Card</th>
            <th scope="col">Amount</th>
            <th scope="col">Status</th>
          </tr>
        </thead>
        <tbody>
          {(payments.data?.payments ?? []).map((p) => (
            <tr key={p.id}>
              <td data-label="When">
                <DateTime value={p.created_at} />
              </td>
              <td data-label="Order">
                <code>{shortId(p.order_id)}</code>
              </td>
              <td data-label="Card">
                {p.brand} {p.last4}
              </td>
              <td data-label="Amount">
                <Money value={p.amount} />
              </td>
              <td data-label="Status">
                <Status value={p.status} /> {p.failure_code && `(${p.failure_code})`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
