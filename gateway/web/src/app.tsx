import type { ComponentType } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { logout } from './api/client';
import { guard, type Access } from './lib/guards';
import { loadCart } from './lib/cart';
import { useCartCount, useSession } from './lib/session';
import { AddressesPage, ForgotPasswordPage, LoginPage, RegisterPage, ResetPasswordPage, VerifyEmailPage } from './pages/Account';
import { CartPage } from './pages/Cart';
import { Home, Search } from './pages/Catalog';
import { CheckoutPage } from './pages/Checkout';
import { OrderPage, OrdersPage } from './pages/Orders';
import { ProductPage } from './pages/Product';
import { SellerHome, SellerShop } from './pages/seller/Seller';
import { AdminPage } from './pages/admin/Admin';

/** A page behind `access`: a guest is sent to log in, someone without the role is told so. */
function guarded<P extends object>(access: Access, Page: ComponentType<P>): ComponentType<P> {
  return function Guarded(props: P) {
    const viewer = useSession();
    const { url, route } = useLocation();
    const decision = guard(access, { signedIn: viewer !== null, roles: viewer?.roles ?? [] }, url);
    // A signed-in visitor is sent on from the login page when they arrive, not the moment the
    // form signs them in (the form then goes where ?next= says).
    const arrivedSignedIn = useRef(decision.kind === 'redirect');
    useEffect(() => {
      if (decision.kind === 'login') route(decision.to, true);
      if (decision.kind === 'redirect' && arrivedSignedIn.current) route(decision.to, true);
    }, [decision.kind, url]);
    if (decision.kind === 'redirect' && !arrivedSignedIn.current) return <Page {...props} />;
    if (decision.kind === 'forbidden') {
      return (
        <section>
          <h1>Not for this account</h1>
          <p>This page needs the {access} role.</p>
        </section>
      );
    }
    return decision.kind === 'allow' ? <Page {...props} /> : null;
  };
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        <a href="/">Back to the shop</a>
      </p>
    </section>
  );
}

function Header() {
  const viewer = useSession();
  const count = useCartCount();
  const { route, path } = useLocation();
  const [open, setOpen] = useState(false);
  useEffect(() => setOpen(false), [path]);
  const roles = viewer?.roles ?? [];
  return (
    <header class="site-header">
      <a href="#main" class="skip-link">
        Skip to content
      </a>
      <a href="/" class="brand">
        Emporium
      </a>
      <a href="/cart" class="cart-link">
        Cart <span class="count" data-testid="cart-count">{count}</span>
        <span class="visually-hidden"> items</span>
      </a>
      <button
        type="button"
        class="menu-toggle"
        aria-expanded={open}
        aria-controls="site-nav"
        onClick={() => setOpen(!open)}
      >
        Menu
      </button>
      <nav id="site-nav" aria-label="Main" class={open ? 'open' : ''}>
        <ul>
          <li>
            <a href="/search">Shop</a>
          </li>
          {viewer ? (
            <>
              <li>
                <a href="/orders">Orders</a>
              </li>
              <li>
                <a href="/account/addresses">Addresses</a>
              </li>
              {(roles.includes('seller') || roles.includes('admin')) && (
                <li>
                  <a href="/seller">Seller console</a>
                </li>
              )}
              {roles.includes('admin') && (
                <li>
                  <a href="/admin">Operations</a>
                </li>
              )}
              <li>
                <button
                  type="button"
                  class="link"
                  onClick={async () => {
                    await logout();
                    await loadCart().catch(() => null);
                    route('/');
                  }}
                >
                  Log out
                </button>
              </li>
            </>
          ) : (
            <>
              <li>
                <a href="/login">Log in</a>
              </li>
              <li>
                <a href="/register">Register</a>
              </li>
            </>
          )}
        </ul>
      </nav>
    </header>
  );
}

export function App() {
  return (
    <LocationProvider>
      <Header />
      <main id="main" tabIndex={-1}>
        <Router>
          <Route path="/" component={Home} />
          <Route path="/search" component={Search} />
          <Route path="/products/:id" component={ProductPage} />
          <Route path="/cart" component={CartPage} />
          <Route path="/checkout" component={guarded('signed-in', CheckoutPage)} />
          <Route path="/orders" component={guarded('signed-in', OrdersPage)} />
          <Route path="/orders/:id" component={guarded('signed-in', OrderPage)} />
          <Route path="/account/addresses" component={guarded('signed-in', AddressesPage)} />
          <Route path="/login" component={guarded('signed-out', LoginPage)} />
          <Route path="/register" component={guarded('signed-out', RegisterPage)} />
          <Route path="/forgot-password" component={ForgotPasswordPage} />
          <Route path="/reset-password" component={ResetPasswordPage} />
          <Route path="/verify-email" component={VerifyEmailPage} />
          <Route path="/seller" component={guarded('seller', SellerHome)} />
          <Route path="/seller/shops/:id" component={guarded('seller', SellerShop)} />
          <Route path="/admin" component={guarded('admin', AdminPage)} />
          <Route path="/admin/:tab" component={guarded('admin', AdminPage)} />
          <Route default component={NotFound} />
        </Router>
      </main>
      <footer class="site-footer">
        <p>Emporium · test mode: no real payments are taken.</p>
      </footer>
    </LocationProvider>
  );
}
