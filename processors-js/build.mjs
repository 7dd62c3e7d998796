// Builds redact.js into dist/redact.wasm, a component for the airtruct:processor@0.1.0 world (wit/ at the
// repository root). No network and no HTTP: the `http` and `fetch-event` features are left out.
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const { component } = await componentize({
  sourcePath: here('./redact.js'),
  witPath: here('../wit'),
  worldName: 'processor',
  disableFeatures: ['http', 'fetch-event'],
});
await mkdir(here('./dist'), { recursive: true });
await writeFile(here('./dist/redact.wasm'), component);
console.error(`wrote dist/redact.wasm (${component.length} bytes)`);
