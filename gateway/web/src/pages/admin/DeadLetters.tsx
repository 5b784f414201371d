import { useRef, useState } from 'preact/hooks';
import { api, call, type Schema } from '../../api/client';
import { DateTime, ErrorMessage, Loading, Select, useAction, useLoad } from '../../components/ui';
import { count, holding, readablePayload, redriveResult } from '../../lib/deadLetters';

type Letter = Schema<'gateway.v1.DeadLetter'>;
type Consumer = Schema<'gateway.v1.ConsumerDeadLetters'>;

const PAGE_SIZE = 50;

/**
 * The dead letters: events a consumer gave up on, with how many each consumer holds. A
 * redrive delivers letters again to their own consumer alone; one that fails again comes back
 * as a new letter (a new sequence).
 */
export function DeadLetters() {
  const [consumer, setConsumer] = useState('');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const [result, setResult] = useState('');
  const status = useRef<HTMLDivElement>(null);
  const listing = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/admin/dead-letters', {
          params: { query: { consumer: consumer || undefined, page_size: PAGE_SIZE, after } },
        }),
      ),
    [consumer, after],
  );
  const action = useAction();

  const redrive = async (name: string, sequence?: string) => {
    setResult('');
    const done = await action.run(() =>
      call(() =>
        api.POST('/api/v1/admin/dead-letters/{consumer}/redrive', {
          params: { path: { consumer: name } },
          body: sequence ? { consumer: name, sequence } : { consumer: name },
        }),
      ),
    );
    if (done) {
      setResult(redriveResult(done));
      // The button pressed goes with its letter: keep the keyboard's place at the result.
      status.current?.focus();
    }
    // Whether it worked or the letter was gone already, show what is stored now.
    listing.reload();
  };

  const choose = (name: string) => {
    setConsumer(name);
    setAfter(undefined);
  };

  const consumers: Consumer[] = listing.data?.consumers ?? [];
  const holders = holding(consumers);
  const letters: Letter[] = listing.data?.dead_letters ?? [];
  const next = listing.data?.next_after;

  return (
    <div>
      <p class="hint">
        Events a consumer gave up on, oldest first. Redriving delivers them again to their own consumer only; one
        that fails again comes back as a new letter.
      </p>
      <div class="actions">
        <Select label="Consumer" name="dead-letter-consumer" value={consumer} onChange={choose}>
          <option value="">All consumers</option>
          {holding(consumers, consumer).map((c) => (
            <option key={c.consumer} value={c.consumer}>
              {c.consumer} ({count(c.dead_letters)})
            </option>
          ))}
        </Select>
        <button type="button" class="secondary" onClick={listing.reload}>
          Refresh
        </button>
      </div>
      <div ref={status} tabIndex={-1} role="status" aria-live="polite" class={result ? 'alert alert-ok' : undefined}>
        {result}
      </div>
      <ErrorMessage error={action.error} />
      {listing.loading && <Loading />}
      <ErrorMessage error={listing.error} />

      {holders.length > 0 && (
        <table class="data">
          <caption>Consumers holding dead letters</caption>
          <thead>
            <tr>
              <th scope="col">Consumer</th>
              <th scope="col">Service</th>
              <th scope="col">Event type</th>
              <th scope="col">Dead letters</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {holders.map((c) => (
              <tr key={c.consumer}>
                <td data-label="Consumer">
                  <code>{c.consumer}</code>
                </td>
                <td data-label="Service">{c.service}</td>
                <td data-label="Event type">{c.event_type}</td>
                <td data-label="Dead letters">{count(c.dead_letters)}</td>
                <td>
                  <button type="button" onClick={() => void redrive(c.consumer!)} disabled={action.busy}>
                    Redrive all<span class="visually-hidden"> of {c.consumer}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {listing.data && consumers.length > 0 && (
        <p class="hint">
          {holders.length} of the platform's {consumers.length} consumers hold dead letters.
        </p>
      )}

      {listing.data && letters.length === 0 && <p>No dead letters.</p>}
      <ul class="dead-letter-list">
        {letters.map((l) => (
          <DeadLetterItem key={l.sequence} letter={l} busy={action.busy} onRedrive={redrive} />
        ))}
      </ul>
      {(after !== undefined || count(next) > 0) && (
        <div class="actions">
          {after !== undefined && (
            <button type="button" class="secondary" onClick={() => setAfter(undefined)}>
              First page
            </button>
          )}
          {count(next) > 0 && (
            <button type="button" class="secondary" onClick={() => setAfter(String(next))}>
              Next page
            </button>
          )}
        </div>
      )}
    </div>
  );
}

function DeadLetterItem({
  letter,
  busy,
  onRedrive,
}: {
  letter: Letter;
  busy: boolean;
  onRedrive: (consumer: string, sequence?: string) => Promise<void>;
}) {
  const sequence = String(letter.sequence ?? '');
  return (
    <li class="card" data-testid="dead-letter">
      <h2 class="letter-title">
        Letter {sequence}: {letter.event_type}
      </h2>
      <dl class="fields">
        <div>
          <dt>Sequence</dt>
          <dd data-testid="sequence">{sequence}</dd>
        </div>
        <div>
          <dt>Consumer</dt>
          <dd>
            <code>{letter.consumer}</code>
          </dd>
        </div>
        <div>
          <dt>Service</dt>
          <dd>{letter.service}</dd>
        </div>
        <div>
          <dt>Event type</dt>
          <dd>{letter.event_type}</dd>
        </div>
        <div>
          <dt>Reason</dt>
          <dd>{letter.reason}</dd>
        </div>
        <div>
          <dt>Deliveries</dt>
          <dd>{count(letter.deliveries)}</dd>
        </div>
        <div>
          <dt>Stored at</dt>
          <dd>
            <DateTime value={letter.stored_at} />
          </dd>
        </div>
        <div>
          <dt>Subject</dt>
          <dd>
            <code>{letter.subject}</code>
            {letter.stream && ` (${letter.stream} #${String(letter.stream_sequence ?? '')})`}
          </dd>
        </div>
        <div>
          <dt>Event id</dt>
          <dd>
            <code>{letter.event_id}</code>
          </dd>
        </div>
      </dl>
      <p class="payload-label">
        Payload
        {letter.payload_truncated && (
          <>
            {' '}
            <span class="badge warn">truncated</span>
            <span class="visually-hidden">: its first 4 KiB</span>
          </>
        )}
      </p>
      <pre class="payload" role="region" aria-label={`Payload of letter ${sequence}`} tabIndex={0}>
        {readablePayload(letter.payload, letter.payload_truncated)}
      </pre>
      <div class="actions">
        <button type="button" onClick={() => void onRedrive(letter.consumer!, sequence)} disabled={busy}>
          Redrive<span class="visually-hidden"> letter {sequence}</span>
        </button>
      </div>
    </li>
  );
}
