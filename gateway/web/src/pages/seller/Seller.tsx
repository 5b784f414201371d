import { useState } from 'preact/hooks';
import { useLocation } from 'preact-iso';
import { api, call, type Schema } from '../../api/client';
import { ApiError } from '../../api/errors';
import {
  DateTime,
  ErrorMessage,
  Field,
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
import { parseAmount, toDecimalString } from '../../lib/money';
import { loadCategories } from '../Catalog';

type Shop = Schema<'shop.v1.Shop'>;
type Product = Schema<'product.v1.Product'>;
type SubOrder = Schema<'order.v1.SubOrder'>;

export const CARRIERS = ['FedEx', 'UPS', 'DHL', 'USPS'] as const;

export function SellerHome() {
  const shops = useLoad(() => call(() => api.GET('/api/v1/me/shops', { params: { query: { page_size: 100 } } })), []);
  const action = useAction();
  const [opened, setOpened] = useState<Shop | null>(null);
  const submit = async (event: Event) => {
    const v = formValues(event);
    const shop = await action.run(() =>
      call(() =>
        api.POST('/api/v1/shops', {
          body: {
            name: v.name ?? '',
            slug: v.slug ?? '',
            contact_email: v.contact_email ?? '',
            currency: (v.currency ?? '').toUpperCase(),
          },
        }),
      ),
    );
    if (shop) {
      setOpened(shop);
      shops.reload();
    }
  };
  const list = shops.data?.shops ?? [];
  return (
    <section>
      <h1>Seller console</h1>
      <h2>Your shops</h2>
      {shops.loading && <Loading />}
      <ErrorMessage error={shops.error} />
      {shops.data && list.length === 0 && <p>You have no shop yet.</p>}
      <ul class="shop-list">
        {list.map((s) => (
          <li key={s.id} class="card">
            <a href={`/seller/shops/${s.id}`}>{s.name}</a> <Status value={s.status} /> · {s.currency}
            {s.status_reason && <p class="hint">{s.status_reason}</p>}
          </li>
        ))}
      </ul>
      <details>
        <summary>Open a new shop</summary>
        {opened && <Notice>{opened.name} is open and waits for an operator's approval.</Notice>}
        <form class="card" onSubmit={submit} aria-label="Open a shop">
          <ErrorMessage error={action.error} />
          <Field label="Name" name="name" required maxLength={100} error={action.error} />
          <Field label="Web address (slug)" name="slug" required minLength={3} maxLength={48} hint="Lower-case letters, digits and hyphens." error={action.error} />
          <Field label="Contact email" name="contact_email" type="email" required maxLength={254} error={action.error} />
          <Field label="Currency" name="currency" required maxLength={3} value="USD" hint="ISO 4217, like USD or EUR." error={action.error} />
          <button type="submit" disabled={action.busy}>
            Open shop
          </button>
        </form>
      </details>
    </section>
  );
}

type Tab = 'orders' | 'products' | 'vouchers';

export function SellerShop({ id }: { id: string }) {
  const { query, route } = useLocation();
  const tab: Tab = (['orders', 'products', 'vouchers'] as const).find((t) => t === query.tab) ?? 'orders';
  const shop = useLoad(() => call(() => api.GET('/api/v1/shops/{id}', { params: { path: { id } } })), [id]);
  if (shop.loading) return <Loading />;
  if (!shop.data) return <ErrorMessage error={shop.error} />;
  return (
    <section>
      <p>
        <a href="/seller">← Your shops</a>
      </p>
      <h1>
        {shop.data.name} <Status value={shop.data.status} />
      </h1>
      {shop.data.description && <p class="lead">{shop.data.description}</p>}
      <div role="tablist" class="tabs" aria-label="Shop">
        {(['orders', 'products', 'vouchers'] as const).map((t) => (
          <button
            key={t}
            type="button"
            role="tab"
            aria-selected={tab === t}
            onClick={() => route(`/seller/shops/${id}?tab=${t}`)}
          >
            {t === 'orders' ? 'Orders to ship' : t === 'products' ? 'Products and stock' : 'Vouchers'}
          </button>
        ))}
      </div>
      <div role="tabpanel">
        {tab === 'orders' && <ShopOrders shopId={id} />}
        {tab === 'products' && <ShopProducts shop={shop.data} />}
        {tab === 'vouchers' && <ShopVouchers shop={shop.data} />}
      </div>
    </section>
  );
}

function ShipForm({ sub, onShipped }: { sub: SubOrder; onShipped: (s: SubOrder) => void }) {
  const action = useAction();
  const submit = async (event: Event) => {
    const v = formValues(event);
    const shipped = await action.run(() =>
      call(() =>
        api.POST('/api/v1/suborders/{id}/ship', {
          params: { path: { id: sub.id! } },
          body: { id: sub.id!, carrier: (v.carrier ?? '') as (typeof CARRIERS)[number], tracking_number: (v.tracking_number ?? '').trim() },
        }),
      ),
    );
    if (shipped) onShipped(shipped);
  };
  const suffix = shortId(sub.id);
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Ship ${suffix}`}>
      <div class="field">
        <label for={`carrier-${sub.id}`}>Carrier</label>
        <select id={`carrier-${sub.id}`} name="carrier" required>
          {CARRIERS.map((c) => (
            <option key={c} value={c}>
              {c}
            </option>
          ))}
        </select>
      </div>
      <div class="field">
        <label for={`tracking-${sub.id}`}>Tracking number</label>
        <input
          id={`tracking-${sub.id}`}
          name="tracking_number"
          required
          maxLength={64}
          pattern="[A-Za-z0-9\-]+"
          aria-invalid={action.error?.field('tracking_number') ? 'true' : undefined}
        />
        {action.error?.field('tracking_number') && (
          <small class="field-error">{action.error.field('tracking_number')}</small>
        )}
      </div>
      <button type="submit" disabled={action.busy}>
        {action.busy ? 'Shipping…' : 'Mark shipped'}
      </button>
      <ErrorMessage error={action.error} />
    </form>
  );
}

function ShopOrders({ shopId }: { shopId: string }) {
  const [status, setStatus] = useState('paid');
  const subs = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/shops/{shop_id}/suborders', {
          params: { path: { shop_id: shopId }, query: { status: status || undefined, page_size: 50 } },
        }),
      ),
    [shopId, status],
  );
  const deliver = useAction();
  const markDelivered = async (sub: SubOrder) => {
    const done = await deliver.run(() =>
      call(() => api.POST('/api/v1/suborders/{id}/deliver', { params: { path: { id: sub.id! } }, body: { id: sub.id! } })),
    );
    if (done) subs.reload();
  };
  return (
    <div>
      <Select label="Show" name="suborder-status" value={status} onChange={setStatus}>
        <option value="paid">To ship (paid)</option>
        <option value="shipped">Shipped</option>
        <option value="delivered">Delivered</option>
        <option value="">All</option>
      </Select>
      <button type="button" class="secondary" onClick={subs.reload}>
        Refresh
      </button>
      {subs.loading && <Loading />}
      <ErrorMessage error={subs.error ?? deliver.error} />
      {subs.data && (subs.data.sub_orders ?? []).length === 0 && <p>Nothing here.</p>}
      <ul class="sub-orders">
        {(subs.data?.sub_orders ?? []).map((s) => (
          <li key={s.id} class="card" data-testid="seller-sub-order" data-order-id={s.order_id}>
            <p>
              Order <strong>{shortId(s.order_id)}</strong>
              {s.shop_name && <span data-testid="seller-sub-order-shop"> for {s.shop_name}</span>} ·{' '}
              <DateTime value={s.created_at} /> · <Status value={s.status} /> · <Money value={s.total} />
            </p>
            <ul>
              {(s.lines ?? []).map((l) => (
                <li key={l.product_id}>
                  {l.quantity} × {l.name}
                </li>
              ))}
            </ul>
            {s.status === 'paid' && <ShipForm sub={s} onShipped={() => subs.reload()} />}
            {s.status === 'shipped' && (
              <p>
                {s.carrier} {s.tracking_number}{' '}
                <button type="button" class="secondary" onClick={() => void markDelivered(s)}>
                  Mark delivered
                </button>
              </p>
            )}
          </li>
        ))}
      </ul>
    </div>
  );
}

function StockForm({ product }: { product: Product }) {
  const availability = useLoad(
    () => call(() => api.GET('/api/v1/products/{id}/availability', { params: { path: { id: product.id! } } })),
    [product.id],
  );
  const action = useAction();
  const submit = async (event: Event) => {
    const { stock } = formValues(event);
    const ok = await action.run(() =>
      call(() =>
        api.PUT('/api/v1/products/{id}/stock', {
          params: { path: { id: product.id! } },
          body: { id: product.id!, stock: Number(stock) },
        }),
      ),
    );
    if (ok) availability.reload();
  };
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Stock of ${product.name}`}>
      <div class="field">
        <label for={`stock-${product.id}`}>Stock on hand</label>
        <input
          id={`stock-${product.id}`}
          key={availability.data ? String(availability.data.stock ?? 0) : 'loading'}
          name="stock"
          type="number"
          min={0}
          required
          defaultValue={availability.data ? String(availability.data.stock ?? 0) : ''}
        />
        {availability.data && (
          <small class="hint">{String(availability.data.reserved ?? 0)} reserved</small>
        )}
        {action.error?.field('stock') && <small class="field-error">{action.error.field('stock')}</small>}
      </div>
      <button type="submit" class="secondary" disabled={action.busy}>
        Set stock
      </button>
      <ErrorMessage error={action.error} />
    </form>
  );
}

function ShopProducts({ shop }: { shop: Shop }) {
  const [status, setStatus] = useState<'active' | 'inactive'>('active');
  const products = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/products', { params: { query: { shop_id: shop.id, status, page_size: 100 } } }),
      ),
    [shop.id, status],
  );
  const categories = useLoad(loadCategories, []);
  const create = useAction();
  const toggle = useAction();
  const currency = shop.currency || 'USD';

  const submit = async (event: Event) => {
    const v = formValues(event);
    const units = parseAmount(v.price ?? '', currency);
    const product = await create.run(async () => {
      if (units === null) {
        throw new ApiError(400, 'invalid_argument', 'Some of what you entered needs another look.', {
          price: `an amount in ${currency}, like ${toDecimalString(1999, currency)}`,
        });
      }
      return call(() =>
        api.POST('/api/v1/products', {
          body: {
            shop_id: shop.id!,
            name: v.name ?? '',
            price: { currency, minor_units: units.toString() },
            category_id: v.category_id || undefined,
            initial_stock: v.initial_stock ? Number(v.initial_stock) : undefined,
            image_urls: v.image_url ? [v.image_url] : undefined,
          },
        }),
      );
    });
    if (product) {
      (event.target as HTMLFormElement).reset();
      products.reload();
    }
  };

  const setActive = async (p: Product, active: boolean) => {
    const ok = await toggle.run(() =>
      call(() =>
        api.PATCH('/api/v1/products/{id}', {
          params: { path: { id: p.id! } },
          body: { id: p.id!, status: active ? 'active' : 'inactive' },
        }),
      ),
    );
    if (ok) products.reload();
  };

  return (
    <div>
      <Select label="Show" name="product-status" value={status} onChange={(v) => setStatus(v as 'active' | 'inactive')}>
        <option value="active">Active products</option>
        <option value="inactive">Inactive products</option>
      </Select>
      {products.loading && <Loading />}
      <ErrorMessage error={products.error ?? toggle.error} />
      <ul class="seller-products">
        {(products.data?.products ?? []).map((p) => (
          <li key={p.id} class="card">
            <p>
              <a href={`/products/${p.id}`}>{p.name}</a> · <Money value={p.price} /> · <Status value={p.status} />{' '}
              <button type="button" class="link" onClick={() => void setActive(p, p.status !== 'active')}>
                {p.status === 'active' ? 'Deactivate' : 'Activate'}
              </button>
            </p>
            <StockForm product={p} />
          </li>
        ))}
      </ul>
      <details>
        <summary>Add a product</summary>
        <form class="card" onSubmit={submit} aria-label="Add a product">
          <ErrorMessage error={create.error} />
          <Field label="Name" name="name" required maxLength={200} error={create.error} />
          <Field label={`Price (${currency})`} name="price" required inputMode="decimal" maxLength={16} error={create.error} />
          <Select label="Category" name="category_id" error={create.error}>
            <option value="">None</option>
            {(categories.data ?? []).map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </Select>
          <Field label="Initial stock" name="initial_stock" type="number" min={0} error={create.error} />
          <Field label="Image URL" name="image_url" type="url" maxLength={2048} apiField="image_urls" error={create.error} />
          <button type="submit" disabled={create.busy}>
            Add product
          </button>
        </form>
      </details>
    </div>
  );
}

function ShopVouchers({ shop }: { shop: Shop }) {
  const vouchers = useLoad(
    () => call(() => api.GET('/api/v1/vouchers', { params: { query: { shop_id: shop.id, page_size: 100 } } })),
    [shop.id],
  );
  const create = useAction();
  const change = useAction();
  const currency = shop.currency || 'USD';
  const [kind, setKind] = useState<'percent' | 'fixed'>('percent');

  const submit = async (event: Event) => {
    const v = formValues(event);
    const amount = kind === 'fixed' ? parseAmount(v.amount ?? '', currency) : null;
    const minOrder = v.min_order ? parseAmount(v.min_order, currency) : null;
    const voucher = await create.run(() =>
      call(() =>
        api.POST('/api/v1/vouchers', {
          body: {
            code: (v.code ?? '').trim(),
            kind,
            currency,
            shop_id: shop.id,
            percent_off: kind === 'percent' ? Number(v.percent_off) : undefined,
            amount_off_minor_units: amount !== null ? amount.toString() : undefined,
            min_order_minor_units: minOrder !== null ? minOrder.toString() : undefined,
            usage_limit: v.usage_limit ? Number(v.usage_limit) : undefined,
            valid_until: v.valid_until ? new Date(v.valid_until).toISOString() : undefined,
          },
        }),
      ),
    );
    if (voucher) {
      (event.target as HTMLFormElement).reset();
      vouchers.reload();
    }
  };
  const setStatus = async (code: string, status: 'active' | 'disabled') => {
    const ok = await change.run(() =>
      call(() => api.PATCH('/api/v1/vouchers/{code}', { params: { path: { code } }, body: { code, status } })),
    );
    if (ok) vouchers.reload();
  };

  return (
    <div>
      {vouchers.loading && <Loading />}
      <ErrorMessage error={vouchers.error ?? change.error} />
      <table class="data">
        <caption class="visually-hidden">Vouchers</caption>
        <thead>
          <tr>
            <th scope="col">Code</th>
            <th scope="col">Discount</th>
            <th scope="col">Used</th>
            <th scope="col">Status</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(vouchers.data?.vouchers ?? []).map((v) => (
            <tr key={v.id}>
              <td data-label="Code">
                <code>{v.code}</code>
              </td>
              <td data-label="Discount">
                {v.kind === 'percent' ? (
                  `${v.percent_off}%`
                ) : (
                  <Money value={{ currency: v.currency ?? currency, minor_units: v.amount_off_minor_units }} />
                )}
              </td>
              <td data-label="Used">
                {v.used_count ?? 0}
                {v.usage_limit ? ` of ${v.usage_limit}` : ''}
              </td>
              <td data-label="Status">
                <Status value={v.status} />
              </td>
              <td>
                <button
                  type="button"
                  class="link"
                  onClick={() => void setStatus(v.code ?? '', v.status === 'active' ? 'disabled' : 'active')}
                >
                  {v.status === 'active' ? 'Disable' : 'Enable'}
                  <span class="visually-hidden"> {v.code}</span>
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <details>
        <summary>New voucher</summary>
        <form class="card" onSubmit={submit} aria-label="New voucher">
          <ErrorMessage error={create.error} />
          <Field label="Code" name="code" required minLength={3} maxLength={32} error={create.error} />
          <Select label="Kind" name="kind" value={kind} onChange={(v) => setKind(v as 'percent' | 'fixed')} error={create.error}>
            <option value="percent">Percent off</option>
            <option value="fixed">Amount off</option>
          </Select>
          {kind === 'percent' ? (
            <Field label="Percent off" name="percent_off" type="number" min={1} max={100} required error={create.error} />
          ) : (
            <Field label={`Amount off (${currency})`} name="amount" inputMode="decimal" required apiField="amount_off_minor_units" error={create.error} />
          )}
          <Field label={`Minimum order (${currency})`} name="min_order" inputMode="decimal" apiField="min_order_minor_units" error={create.error} />
          <Field label="Usage limit" name="usage_limit" type="number" min={0} error={create.error} />
          <Field label="Valid until" name="valid_until" type="datetime-local" error={create.error} />
          <button type="submit" disabled={create.busy}>
            Create voucher
          </button>
        </form>
      </details>
    </div>
  );
}
