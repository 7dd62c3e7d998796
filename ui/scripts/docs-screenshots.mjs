// Copies the screenshots of the last browser test run (test-results/screenshots) to docs/console/.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ui = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const from = path.join(ui, 'test-results/screenshots');
const to = path.resolve(ui, '../docs/console');
const files = fs.existsSync(from) ? fs.readdirSync(from).filter((f) => f.endsWith('.png')) : [];
if (files.length === 0) {
  console.error('no screenshots: run `npm test` first');
  process.exit(1);
}
fs.mkdirSync(to, { recursive: true });
for (const f of fs.readdirSync(to)) if (f.endsWith('.png')) fs.rmSync(path.join(to, f));
for (const f of files) fs.copyFileSync(path.join(from, f), path.join(to, f.replace(/^\d+-/, '')));
console.log(`copied ${files.length} screenshots to docs/console/`);
