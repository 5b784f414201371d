import { api, call, type Schema } from '../api/client';
import { ErrorMessage, Field, formValues, useAction } from './ui';

type Address = Schema<'address.v1.Address'>;

/** Adds an address (or replaces one, given `address`), showing the API's problem per field. */
export function AddressForm({ address, onSaved }: { address?: Address; onSaved: (a: Address) => void }) {
  const action = useAction();
  const submit = async (event: Event) => {
    const v = formValues(event);
    const body = {
      recipient_name: v.recipient_name ?? '',
      line1: v.line1 ?? '',
      line2: v.line2 ?? '',
      city: v.city ?? '',
      region: v.region ?? '',
      postal_code: v.postal_code ?? '',
      country_code: (v.country_code ?? '').toUpperCase(),
      phone: v.phone ?? '',
    };
    const saved = await action.run(() =>
      address?.id
        ? call(() =>
            api.PUT('/api/v1/addresses/{id}', { params: { path: { id: address.id! } }, body: { ...body, id: address.id! } }),
          )
        : call(() => api.POST('/api/v1/addresses', { body })),
    );
    if (saved) onSaved(saved);
  };
  const e = action.error;
  return (
    <form class="card address-form" onSubmit={submit} aria-label={address ? 'Edit address' : 'New address'}>
      <ErrorMessage error={e} />
      <Field label="Full name" name="recipient_name" required maxLength={200} autocomplete="name" value={address?.recipient_name} error={e} />
      <Field label="Address line 1" name="line1" required maxLength={200} autocomplete="address-line1" value={address?.line1} error={e} />
      <Field label="Address line 2" name="line2" maxLength={200} autocomplete="address-line2" value={address?.line2} error={e} />
      <Field label="City" name="city" required maxLength={100} autocomplete="address-level2" value={address?.city} error={e} />
      <Field label="Region" name="region" maxLength={100} autocomplete="address-level1" value={address?.region} error={e} />
      <Field label="Postal code" name="postal_code" maxLength={20} autocomplete="postal-code" value={address?.postal_code} error={e} />
      <Field
        label="Country code"
        name="country_code"
        required
        maxLength={2}
        autocomplete="country"
        hint="Two letters, like US or DE."
        value={address?.country_code}
        error={e}
      />
      <Field label="Phone" name="phone" type="tel" maxLength={40} autocomplete="tel" hint="With the country code, like +1 555 0100 000." value={address?.phone} error={e} />
      <button type="submit" disabled={action.busy}>
        {action.busy ? 'Saving…' : 'Save address'}
      </button>
    </form>
  );
}
