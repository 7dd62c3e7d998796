// Builds the JavaScript processors into dist/: redact.js for the airtruct:processor@0.1.0 world (wit/ at the
// repository root) and tokenize.js for 0.2.0 (wit/v0.2.0), which calls the host's cache capability. No network
// of their own and no HTTP: the `http` and `fetch-event` features are left out.
import { componentize } from '@bytecodealliance/componentize-js';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
await mkdir(here('./dist'), { recursive: true });
for (const [name, wit] of [['redact', '../wit'], ['tokenize', '../wit/v0.2.0']]) {
  const { component } = await componentize({
    sourcePath: here(`./${name}.js`),
    witPath: here(wit),
    worldName: 'processor',
    disableFeatures: ['http', 'fetch-event'],
  });
  await writeFile(here(`./dist/${name}.wasm`), component);
  console.error(`wrote dist/${name}.wasm (${component.length} bytes)`);
}
