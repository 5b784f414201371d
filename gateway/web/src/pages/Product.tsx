import { useState } from 'preact/hooks';
import { api, call, type Schema } from '../api/client';
import { ApiError } from '../api/errors';
import {
  DateTime,
  ErrorMessage,
  Field,
  Loading,
  Money,
  Notice,
  formValues,
  useAction,
  useLoad,
} from '../components/ui';
import { addToCart } from '../lib/cart';
import { useSession } from '../lib/session';

type Review = Schema<'comment.v1.Review'>;
type Summary = Schema<'comment.v1.ReviewSummary'>;

function Stars({ rating }: { rating: number }) {
  const r = Math.max(0, Math.min(5, Math.round(rating)));
  return (
    <span class="stars" role="img" aria-label={`${rating.toFixed(1)} out of 5 stars`}>
      {'★'.repeat(r)}
      {'☆'.repeat(5 - r)}
    </span>
  );
}

function RatingSummary({ summary }: { summary: Summary | undefined }) {
  const count = Number(summary?.review_count ?? 0);
  if (!summary || count === 0) return <p>No reviews yet.</p>;
  const distribution = (summary.distribution ?? []).map(Number);
  return (
    <div class="rating-summary">
      <p>
        <Stars rating={summary.average_rating ?? 0} />{' '}
        <strong>{(summary.average_rating ?? 0).toFixed(1)}</strong> from {count}{' '}
        {count === 1 ? 'review' : 'reviews'}
      </p>
      <dl class="distribution">
        {[5, 4, 3, 2, 1].map((stars) => (
          <div key={stars}>
            <dt>{stars} ★</dt>
            <dd>
              <meter min={0} max={count} value={distribution[stars - 1] ?? 0} aria-label={`${stars} stars`} />{' '}
              {distribution[stars - 1] ?? 0}
            </dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

const REPORT_REASONS = ['spam', 'offensive', 'off_topic', 'fake', 'other'] as const;

/** What a signed-in reader may do with a review: vote it helpful, report it, and, for the
 * seller of the product, answer it. */
function ReviewActions({ review, canReply, onChanged }: { review: Review; canReply: boolean; onChanged: () => void }) {
  const viewer = useSession();
  const action = useAction();
  const [done, setDone] = useState<string | null>(null);
  if (!viewer) return null;
  const id = review.id!;
  const own = review.author_id === viewer.userId;
  const helpful = async () => {
    if (await action.run(() => call(() => api.PUT('/api/v1/reviews/{id}/helpful', { params: { path: { id } }, body: { id } })))) {
      setDone('Thanks for your vote.');
      onChanged();
    }
  };
  const report = async (event: Event) => {
    const v = formValues(event);
    const reason = (REPORT_REASONS.find((r) => r === v.reason) ?? 'other') as (typeof REPORT_REASONS)[number];
    if (
      await action.run(() =>
        call(() =>
          api.POST('/api/v1/reviews/{id}/reports', { params: { path: { id } }, body: { id, reason, note: v.note ?? '' } }),
        ),
      )
    )
      setDone('Reported: a moderator will look at it.');
  };
  const reply = async (event: Event) => {
    const v = formValues(event);
    if (
      await action.run(() =>
        call(() => api.POST('/api/v1/reviews/{id}/reply', { params: { path: { id } }, body: { id, body: v.body ?? '' } })),
      )
    ) {
      setDone('Your reply is published.');
      onChanged();
    }
  };
  return (
    <div class="review-actions">
      {done && <Notice>{done}</Notice>}
      <ErrorMessage error={action.error} />
      {!own && !done && (
        <>
          <button type="button" class="secondary" onClick={() => void helpful()} disabled={action.busy}>
            Helpful<span class="visually-hidden">: {review.title}</span>
          </button>
          <details>
            <summary>
              Report<span class="visually-hidden"> the review {review.title}</span>
            </summary>
            <form class="inline-form" onSubmit={report} aria-label={`Report the review ${review.title ?? ''}`}>
              <div class="field">
                <label for={`reason-${id}`}>Reason</label>
                <select id={`reason-${id}`} name="reason">
                  {REPORT_REASONS.map((r) => (
                    <option key={r} value={r}>
                      {r.replace('_', ' ')}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field">
                <label for={`note-${id}`}>Note (optional)</label>
                <input id={`note-${id}`} name="note" maxLength={500} />
              </div>
              <button type="submit" class="secondary" disabled={action.busy}>
                Send report
              </button>
            </form>
          </details>
        </>
      )}
      {canReply && !review.reply?.body && (
        <form class="inline-form" onSubmit={reply} aria-label={`Reply to ${review.title ?? 'the review'}`}>
          <div class="field grow">
            <label for={`reply-${id}`}>Your reply as the seller</label>
            <textarea id={`reply-${id}`} name="body" rows={2} maxLength={2000} required />
          </div>
          <button type="submit" disabled={action.busy}>
            Reply
          </button>
        </form>
      )}
    </div>
  );
}

function ReviewItem({ review, canReply, onChanged }: { review: Review; canReply: boolean; onChanged: () => void }) {
  return (
    <li class="review card" data-testid="review">
      <p>
        <Stars rating={review.rating ?? 0} /> <strong>{review.title}</strong>
      </p>
      {review.verified_purchase && <p class="badge verified">Verified purchase</p>}
      {review.body && <p class="review-body">{review.body}</p>}
      <p class="meta">
        <DateTime value={review.created_at} />
        {Number(review.helpful_count ?? 0) > 0 && ` · ${review.helpful_count} found this helpful`}
      </p>
      {review.reply?.body && (
        <blockquote class="reply">
          <p>
            <strong>The seller replied:</strong> {review.reply.body}
          </p>
        </blockquote>
      )}
      <ReviewActions review={review} canReply={canReply} onChanged={onChanged} />
    </li>
  );
}

function WriteReview({ productId, onSaved }: { productId: string; onSaved: () => void }) {
  const mine = useLoad(
    () =>
      call(() => api.GET('/api/v1/products/{id}/reviews/mine', { params: { path: { id: productId } } })).catch(
        (e) => {
          if (e instanceof ApiError && e.status === 404) return null;
          throw e;
        },
      ),
    [productId],
  );
  const action = useAction();
  const [saved, setSaved] = useState<Review | null>(null);
  const submit = async (event: Event) => {
    const v = formValues(event);
    const review = await action.run(() =>
      call(() =>
        api.PUT('/api/v1/products/{id}/reviews/mine', {
          params: { path: { id: productId } },
          body: { id: productId, rating: Number(v.rating), title: v.title ?? '', body: v.body ?? '' },
        }),
      ),
    );
    if (review) {
      setSaved(review);
      onSaved();
    }
  };
  if (mine.loading) return <Loading />;
  const current = saved ?? mine.data ?? null;
  return (
    <form class="card review-form" onSubmit={submit} aria-labelledby="write-review">
      <h3 id="write-review">{current ? 'Your review' : 'Write a review'}</h3>
      {current?.status === 'pending' && (
        <Notice>Your review waits for a moderator before it is published.</Notice>
      )}
      {saved && saved.status === 'published' && <Notice>Thank you: your review is published.</Notice>}
      <ErrorMessage error={action.error ?? mine.error} />
      <div class="field">
        <label for="f-rating">Rating</label>
        <select id="f-rating" name="rating" required>
          {[5, 4, 3, 2, 1].map((n) => (
            <option key={n} value={n} selected={n === (current?.rating ?? 5)}>
              {n} {n === 1 ? 'star' : 'stars'}
            </option>
          ))}
        </select>
        {action.error?.field('rating') && <small class="field-error">{action.error.field('rating')}</small>}
      </div>
      <Field label="Title" name="title" required maxLength={150} value={current?.title ?? ''} error={action.error} />
      <div class={`field${action.error?.field('body') ? ' field-invalid' : ''}`}>
        <label for="f-body">Review</label>
        <textarea id="f-body" name="body" rows={4} maxLength={5000} defaultValue={current?.body ?? ''} />
        {action.error?.field('body') && <small class="field-error">{action.error.field('body')}</small>}
      </div>
      <button type="submit" disabled={action.busy}>
        {action.busy ? 'Saving…' : current ? 'Update review' : 'Publish review'}
      </button>
    </form>
  );
}

export function ProductPage({ id }: { id: string }) {
  const viewer = useSession();
  const product = useLoad(() => call(() => api.GET('/api/v1/products/{id}', { params: { path: { id } } })), [id]);
  const availability = useLoad(
    () => call(() => api.GET('/api/v1/products/{id}/availability', { params: { path: { id } } })),
    [id],
  );
  const shopId = product.data?.shop_id;
  const shop = useLoad(
    () => (shopId ? call(() => api.GET('/api/v1/shops/{id}', { params: { path: { id: shopId } } })) : Promise.resolve(null)),
    [shopId],
  );
  const reviews = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/products/{id}/reviews', { params: { path: { id }, query: { page_size: 20 } } }),
      ),
    [id],
  );
  const [quantity, setQuantity] = useState(1);
  const add = useAction();
  const [added, setAdded] = useState(false);

  if (product.loading) return <Loading />;
  if (product.error || !product.data) return <ErrorMessage error={product.error} />;
  const p = product.data;
  const available = Number(availability.data?.available ?? 0);
  const inStock = availability.data?.in_stock ?? false;

  const onAdd = async (event: Event) => {
    event.preventDefault();
    setAdded(false);
    const cart = await add.run(() => addToCart(id, quantity));
    if (cart) setAdded(true);
  };

  return (
    <article class="product">
      <div class="product-media">
        {p.image_urls?.[0] ? (
          <img src={p.image_urls[0]} alt={p.name} width={640} height={480} />
        ) : (
          <span class="placeholder large" aria-hidden="true" />
        )}
      </div>
      <div class="product-info">
        <h1>{p.name}</h1>
        {shop.data && (
          <p class="meta">
            Sold by <strong>{shop.data.name}</strong>
            {shop.data.description && <span data-testid="shop-description"> — {shop.data.description}</span>}
          </p>
        )}
        <p class="price">
          <Money value={p.price} />
        </p>
        {p.description && <p data-testid="product-description">{p.description}</p>}
        <p class="availability" data-testid="availability">
          {availability.loading
            ? 'Checking stock…'
            : availability.error
              ? 'Stock unknown'
              : inStock
                ? `In stock (${available} available)`
                : 'Out of stock'}
        </p>
        <form class="add-to-cart" onSubmit={onAdd}>
          <div class="field inline">
            <label for="f-quantity">Quantity</label>
            <input
              id="f-quantity"
              type="number"
              min={1}
              max={Math.max(1, Math.min(99, available || 99))}
              value={quantity}
              onInput={(e) => setQuantity(Math.max(1, Math.min(99, Number((e.currentTarget as HTMLInputElement).value) || 1)))}
            />
          </div>
          <button type="submit" disabled={add.busy || (!availability.loading && !inStock)}>
            {add.busy ? 'Adding…' : 'Add to cart'}
          </button>
        </form>
        <ErrorMessage error={add.error} />
        {added && (
          <Notice>
            Added to your cart. <a href="/cart">View cart</a>
          </Notice>
        )}
      </div>
      <section class="reviews" aria-labelledby="reviews-title">
        <h2 id="reviews-title">Reviews</h2>
        {reviews.loading && <Loading />}
        <ErrorMessage error={reviews.error} />
        <RatingSummary summary={reviews.data?.summary} />
        <ul class="review-list">
          {(reviews.data?.reviews ?? []).map((r) => (
            <ReviewItem
              key={r.id}
              review={r}
              canReply={!!viewer && !!shop.data && shop.data.owner_id === viewer.userId}
              onChanged={reviews.reload}
            />
          ))}
        </ul>
        {viewer ? (
          <WriteReview productId={id} onSaved={reviews.reload} />
        ) : (
          <p>
            <a href={`/login?next=${encodeURIComponent(`/products/${id}`)}`}>Log in</a> to write a review.
          </p>
        )}
      </section>
    </article>
  );
}
