// A processor in JavaScript: masks the configured fields of JSON payloads and records how many it masked in the
// `redacted` metadata key. Built into an airtruct:processor component by build.mjs (componentize-js).
import { log } from 'airtruct:processor/log@0.1.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let settings = null;

// Metadata travels packed: for each key and value, a little-endian u32 length and the UTF-8 bytes.
function unpack(bytes) {
  const pairs = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const next = () => {
    const len = view.getUint32(at, true);
    const text = decoder.decode(bytes.subarray(at + 4, at + 4 + len));
    at += 4 + len;
    return text;
  };
  while (at < bytes.length) pairs.push([next(), next()]);
  return pairs;
}

function pack(pairs) {
  const parts = [];
  for (const [k, v] of pairs) for (const s of [k, v]) parts.push(encoder.encode(s));
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let at = 0;
  for (const p of parts) {
    view.setUint32(at, p.length, true);
    out.set(p, at + 4);
    at += 4 + p.length;
  }
  return out;
}

export function describe() {
  return {
    name: 'redact',
    description: 'Masks fields of JSON payloads (written in JavaScript)',
    version: '0.1.0',
    configSchema: JSON.stringify({
      type: 'object',
      properties: {
        fields: { type: 'array', items: { type: 'string' }, description: 'Top-level fields to mask' },
        mask: { type: 'string', description: 'What replaces their values (default "***")' },
      },
      required: ['fields'],
      additionalProperties: false,
    }),
  };
}

export function init(config) {
  const c = JSON.parse(config);
  const errors = [];
  if (!Array.isArray(c.fields) || c.fields.some((f) => typeof f !== 'string')) {
    errors.push({ path: '.fields', message: 'required: a list of field names' });
  } else if (c.fields.length === 0) {
    errors.push({ path: '.fields', message: 'name at least one field' });
  }
  if (c.mask !== undefined && typeof c.mask !== 'string') {
    errors.push({ path: '.mask', message: 'must be a string' });
  }
  if (errors.length > 0) throw errors;
  settings = { fields: c.fields, mask: c.mask ?? '***' };
  log('info', `redacting ${settings.fields.join(', ')}`);
}

export function process(batch) {
  return batch.map((msg) => {
    let doc;
    try {
      doc = JSON.parse(decoder.decode(msg.payload));
    } catch (e) {
      return { ...msg, error: `payload is not JSON: ${e.message}` };
    }
    let n = 0;
    for (const f of settings.fields) {
      if (doc !== null && typeof doc === 'object' && f in doc) {
        doc[f] = settings.mask;
        n += 1;
      }
    }
    const meta = unpack(msg.metadata).filter(([k]) => k !== 'redacted');
    meta.push(['redacted', String(n)]);
    return { payload: encoder.encode(JSON.stringify(doc)), metadata: pack(meta), error: undefined };
  });
}
