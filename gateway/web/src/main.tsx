import { render } from 'preact';
import { restoreSession } from './api/client';
import { App } from './app';
import { loadCart } from './lib/cart';
import './styles.css';

const root = document.getElementById('app')!;
// A reload or a new tab keeps the session (the refresh token is in an HttpOnly cookie).
void restoreSession()
  .catch(() => undefined)
  .then(() => loadCart().catch(() => null))
  .finally(() => {
    // The "Loading Emporium…" placeholder of index.html goes before the app comes in.
    root.replaceChildren();
    render(<App />, root);
  });
