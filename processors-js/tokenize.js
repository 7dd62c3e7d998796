// A processor in JavaScript that calls out through a host capability (contract 0.2.0): replaces the configured
// fields of JSON payloads with stable tokens (`tok_` and a hash of the value) and keeps each token's value in a
// cache the stream grants it, so that a later step with access to the cache can look the value up again. Built
// into an airtruct:processor@0.2.0 component by build.mjs (componentize-js).
import { log } from 'airtruct:processor/log@0.2.0';
import { set } from 'airtruct:processor/cache@0.2.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let settings = null;

// FNV-1a, 64 bits, as hex: the same value always gets the same token.
function token(value) {
  let h = 0xcbf29ce484222325n;
  for (const b of encoder.encode(value)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return `tok_${h.toString(16).padStart(16, '0')}`;
}

export function describe() {
  return {
    info: {
      name: 'tokenize',
      description: 'Replaces fields of JSON payloads with stable tokens kept in a cache (written in JavaScript)',
      version: '0.1.0',
      configSchema: JSON.stringify({
        type: 'object',
        properties: {
          fields: { type: 'array', items: { type: 'string' }, description: 'Top-level fields to tokenize' },
          cache: { type: 'string', description: 'The cache (resources.caches, granted in grants) that keeps each token\'s value' },
        },
        required: ['fields', 'cache'],
        additionalProperties: false,
      }),
    },
    capabilities: ['cache'],
  };
}

export function init(config) {
  const c = JSON.parse(config);
  const errors = [];
  if (!Array.isArray(c.fields) || c.fields.length === 0 || c.fields.some((f) => typeof f !== 'string')) {
    errors.push({ path: '.fields', message: 'required: at least one field name' });
  }
  if (typeof c.cache !== 'string' || c.cache === '') {
    errors.push({ path: '.cache', message: 'required: the name of a cache resource' });
  }
  if (errors.length > 0) throw errors;
  settings = { fields: c.fields, cache: c.cache };
  log('info', `tokenizing ${settings.fields.join(', ')} into cache ${settings.cache}`);
}

export function process(batch) {
  return batch.map((msg) => {
    let doc;
    try {
      doc = JSON.parse(decoder.decode(msg.payload));
    } catch (e) {
      return { ...msg, error: `payload is not JSON: ${e.message}` };
    }
    for (const f of settings.fields) {
      if (doc === null || typeof doc !== 'object' || !(f in doc)) continue;
      const value = typeof doc[f] === 'string' ? doc[f] : JSON.stringify(doc[f]);
      const t = token(value);
      try {
        set(settings.cache, t, encoder.encode(value), undefined);
      } catch (e) {
        // A host error comes back as a value (thrown here as a ComponentError whose payload is the host-error).
        const why = e && e.payload ? `${e.payload.tag}${e.payload.val !== undefined ? `: ${e.payload.val}` : ''}` : String(e);
        return { ...msg, error: `tokenize: the cache refused ${f}: ${why}` };
      }
      doc[f] = t;
    }
    return { payload: encoder.encode(JSON.stringify(doc)), metadata: msg.metadata, error: undefined };
  });
}
