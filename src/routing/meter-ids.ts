// Format and check-digit validation of meter IDs (the CloudEvents `subject`).

export type MeterIdScheme = 'nmi' | 'mpan' | 'gsrn';

const NMI_BODY = /^[A-HJ-NP-Z0-9]{10}$/;   // upper-case letters and digits, excluding I and O

/**
 * AEMO NMI checksum digit (National Metering Identifier Procedure, Appendix) of 10 characters.
 * The algorithm is defined on ASCII codes, so it accepts any upper-case letter (including I and O,
 * e.g. the placeholder 'NMI1234567' → 5); isValidMeterId is the one that rejects I and O.
 */
export function nmiChecksum(nmi10: string): number {
  if (!/^[A-Z0-9]{10}$/.test(nmi10)) throw new RangeError(`not 10 upper-case letters/digits: '${nmi10}'`);
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    let v = nmi10.charCodeAt(9 - i);    // from the right
    if (i % 2 === 0) v *= 2;            // double every second one, starting with the rightmost
    for (; v > 0; v = Math.floor(v / 10)) sum += v % 10;
  }
  return (10 - (sum % 10)) % 10;
}

const MPAN_PRIMES = [3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43];

/** UK MPAN core check digit of the first 12 digits. */
function mpanCheckDigit(digits12: string): number {
  const sum = MPAN_PRIMES.reduce((acc, p, i) => acc + p * Number(digits12[i]), 0);
  return (sum % 11) % 10;
}

/** GS1 mod-10 check digit of the digits before it (weights 3,1,3,… from the right). */
function gs1CheckDigit(digits: string): number {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    sum += Number(digits[digits.length - 1 - i]) * (i % 2 === 0 ? 3 : 1);
  }
  return (10 - (sum % 10)) % 10;
}

export function isValidMeterId(scheme: MeterIdScheme, id: string): boolean {
  if (typeof id !== 'string') return false;
  switch (scheme) {
    case 'nmi':
      if (id.length === 10) return NMI_BODY.test(id);
      return id.length === 11 && NMI_BODY.test(id.slice(0, 10)) && /^\d$/.test(id[10]!)
        && nmiChecksum(id.slice(0, 10)) === Number(id[10]);
    case 'mpan':
      return /^\d{13}$/.test(id) && mpanCheckDigit(id.slice(0, 12)) === Number(id[12]);
    case 'gsrn':
      return /^\d{18}$/.test(id) && gs1CheckDigit(id.slice(0, 17)) === Number(id[17]);
    default:
      return false;
  }
}
