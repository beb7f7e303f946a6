import { type CountryCode, parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { ServiceError, ServiceErrorCode } from '../errors.js';

/** Region assumed for numbers written without a country code, e.g. `(415) 555-0123`. */
export const DEFAULT_PHONE_REGION: CountryCode = 'US';

/**
 * The E.164 form of a phone number (`+14155550123`), or `undefined` when it is not a valid number.
 * Accepts E.164, international and national formats, punctuation, `tel:` URIs; an extension is
 * dropped. Validity uses libphonenumber's full metadata (number ranges, not just lengths).
 */
export function toE164(value: string, region: CountryCode = DEFAULT_PHONE_REGION): string | undefined {
  const parsed = parsePhoneNumberFromString(value.trim(), region);
  return parsed?.isValid() === true ? parsed.number : undefined;
}

/**
 * {@link toE164}, for input that must be a phone number.
 * @throws ServiceError `E_INVALID_PHONE` (400) naming the value.
 */
export function normalisePhone(value: string, region: CountryCode = DEFAULT_PHONE_REGION): string {
  const e164 = toE164(value, region);
  if (e164 === undefined) {
    throw new ServiceError(
      ServiceErrorCode.InvalidPhone,
      `Invalid phone number ${JSON.stringify(value)}: expected a valid number in E.164 (+14155550123) or, for region ${region}, a national format such as (415) 555-0123`,
    );
  }
  return e164;
}
