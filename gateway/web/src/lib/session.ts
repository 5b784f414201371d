import { useEffect, useState } from 'preact/hooks';
import { session, type Session } from '../api/client';
import { cartCount } from './cart';
import type { Store } from './store';

function useStore<T>(store: Store<T>): T {
  const [value, setValue] = useState(store.value);
  useEffect(() => {
    setValue(store.value);
    return store.subscribe(setValue);
  }, [store]);
  return value;
}

export function useSession(): Session | null {
  return useStore(session);
}

export function useCartCount(): number {
  return useStore(cartCount);
}
