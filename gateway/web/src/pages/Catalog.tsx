import { useLocation } from 'preact-iso';
import { api, call, type Schema } from '../api/client';
import { ErrorMessage, Loading, Money, useLoad } from '../components/ui';
import { parseAmount } from '../lib/money';

type Product = Schema<'product.v1.Product'>;
type Category = Schema<'product.v1.Category'>;

export function loadCategories(): Promise<Category[]> {
  return call(() => api.GET('/api/v1/categories')).then((r) => r.categories ?? []);
}

export function ProductCard({ product }: { product: Product }) {
  const image = product.image_urls?.[0];
  return (
    <li class="card product-card">
      <a href={`/products/${product.id}`} class="product-link">
        {image ? (
          <img src={image} alt="" loading="lazy" width={320} height={240} />
        ) : (
          <span class="placeholder" aria-hidden="true" />
        )}
        <span class="product-name">{product.name}</span>
      </a>
      <Money value={product.price} />
    </li>
  );
}

function CategoryNav({ categories, current }: { categories: Category[]; current?: string }) {
  return (
    <nav aria-label="Categories" class="categories">
      <ul>
        <li>
          <a href="/search" aria-current={!current ? 'page' : undefined}>
            All
          </a>
        </li>
        {categories.map((c) => (
          <li key={c.id}>
            <a
              href={`/search?category_id=${encodeURIComponent(c.id ?? '')}`}
              aria-current={current === c.id ? 'page' : undefined}
            >
              {c.name}
            </a>
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function Home() {
  const categories = useLoad(loadCategories, []);
  const products = useLoad(
    () => call(() => api.GET('/api/v1/products', { params: { query: { page_size: 12 } } })),
    [],
  );
  return (
    <section>
      <h1>Welcome to Emporium</h1>
      <p class="lead">Products from independent shops, one cart, one checkout.</p>
      <form action="/search" method="get" role="search" class="search-inline">
        <label for="home-q" class="visually-hidden">
          Search products
        </label>
        <input id="home-q" name="q" type="search" placeholder="Search products" maxLength={200} />
        <button type="submit">Search</button>
      </form>
      {categories.data && <CategoryNav categories={categories.data} />}
      <h2>New in</h2>
      {products.loading && <Loading />}
      <ErrorMessage error={products.error ?? categories.error} />
      {products.data && (
        <ul class="grid">
          {(products.data.products ?? []).map((p) => (
            <ProductCard key={p.id} product={p} />
          ))}
        </ul>
      )}
    </section>
  );
}

/** Search and category browsing, with filters; the filters live in the URL. */
export function Search() {
  const { query, route, path } = useLocation();
  const q = query.q ?? '';
  const categoryId = query.category_id ?? '';
  const currency = query.currency || 'USD';
  const min = query.min ?? '';
  const max = query.max ?? '';
  const cursor = query.cursor ?? '';
  const categories = useLoad(loadCategories, []);
  const minUnits = min ? parseAmount(min, currency) : null;
  const maxUnits = max ? parseAmount(max, currency) : null;
  const results = useLoad(
    () =>
      call(() =>
        api.GET('/api/v1/products', {
          params: {
            query: {
              q: q || undefined,
              category_id: categoryId || undefined,
              min_price_minor_units: minUnits !== null ? minUnits.toString() : undefined,
              max_price_minor_units: maxUnits !== null ? maxUnits.toString() : undefined,
              currency: minUnits !== null || maxUnits !== null ? currency : undefined,
              page_size: 24,
              cursor: cursor || undefined,
            },
          },
        }),
      ),
    [q, categoryId, min, max, currency, cursor],
  );
  const category = categories.data?.find((c) => c.id === categoryId);

  const submit = (event: Event) => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const params = new URLSearchParams();
    for (const key of ['q', 'category_id', 'min', 'max', 'currency']) {
      const value = String(data.get(key) ?? '').trim();
      if (value) params.set(key, value);
    }
    route(`${path}?${params}`);
  };

  const nextPage = () => {
    const params = new URLSearchParams(query as Record<string, string>);
    params.set('cursor', results.data?.next_cursor ?? '');
    route(`${path}?${params}`);
  };

  return (
    <section class="with-sidebar">
      <h1>{category ? category.name : q ? `Results for “${q}”` : 'All products'}</h1>
      {categories.data && <CategoryNav categories={categories.data} current={categoryId} />}
      <form key={JSON.stringify(query)} class="filters" role="search" onSubmit={submit} aria-label="Search filters">
        <div class="field">
          <label for="f-q">Search</label>
          <input id="f-q" name="q" type="search" defaultValue={q} maxLength={200} />
        </div>
        <div class="field">
          <label for="f-category">Category</label>
          <select id="f-category" name="category_id">
            <option value="">Any</option>
            {(categories.data ?? []).map((c) => (
              <option key={c.id} value={c.id} selected={c.id === categoryId}>
                {c.name}
              </option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-min">Min price</label>
          <input id="f-min" name="min" inputMode="decimal" defaultValue={min} maxLength={16} />
        </div>
        <div class="field">
          <label for="f-max">Max price</label>
          <input id="f-max" name="max" inputMode="decimal" defaultValue={max} maxLength={16} />
        </div>
        <div class="field">
          <label for="f-currency">Currency</label>
          <input id="f-currency" name="currency" defaultValue={currency} maxLength={3} pattern="[A-Z]{3}" />
        </div>
        {(min && minUnits === null) || (max && maxUnits === null) ? (
          <p class="field-error" role="alert">
            Prices are amounts like 12.50.
          </p>
        ) : null}
        <button type="submit">Apply</button>
      </form>
      <div class="results" aria-live="polite" aria-busy={results.loading}>
        {results.loading && <Loading />}
        <ErrorMessage error={results.error} />
        {results.data && (results.data.products ?? []).length === 0 && <p>No products match.</p>}
        {results.data && (
          <ul class="grid">
            {(results.data.products ?? []).map((p) => (
              <ProductCard key={p.id} product={p} />
            ))}
          </ul>
        )}
        {results.data?.next_cursor && (
          <button type="button" class="secondary" onClick={nextPage}>
            More results
          </button>
        )}
      </div>
    </section>
  );
}
