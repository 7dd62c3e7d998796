import { useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import { api, ok, raw } from '../api/client';
import type { ProcessorView } from '../api/types';
import { Capabilities } from '../components/ResourceFields';
import { Confirm, Dropzone, Empty, ErrorBanner, PageHeader } from '../components/ui';
import { fmtBytes, fmtTime } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad } from '../lib/hooks';

function nameFromFile(file: string): string {
  return file
    .replace(/\.wasm$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
}

export function ProcessorsPage() {
  const { name: selectedName } = useParams();
  const navigate = useNavigate();
  const { canEdit } = useAccess();
  const list = useLoad(() => ok(api.GET('/api/v1/processors')), []);
  const processors = list.data ?? [];
  return (
    <div className="page">
      <PageHeader title="Processors" sub="Your own WebAssembly components, used in streams as wasm: { name, config }." />
      {canEdit && (
        <Upload
          onUploaded={(p) => {
            void list.reload();
            navigate(`/processors/${p.name}`);
          }}
        />
      )}
      <ErrorBanner error={list.error} title="Cannot load the processors" />
      {list.data && processors.length === 0 && <Empty>No processor uploaded yet.{canEdit && ' Drop a .wasm component above.'}</Empty>}
      {processors.length > 0 && (
        <div className="grid-side">
          <div className="card flush">
            <table className="table" aria-label="Uploaded processors">
              <thead>
                <tr>
                  <th>Name</th>
                  <th className="num">Latest</th>
                  <th className="num">Used by</th>
                </tr>
              </thead>
              <tbody>
                {processors.map((p) => (
                  <tr key={p.name} className={p.name === selectedName ? 'hl' : ''}>
                    <td>
                      <Link to={`/processors/${p.name}`} className="strong">
                        {p.name}
                      </Link>
                      <div className="muted small clip">{p.description || p.described_description}</div>
                      <div className="proc-meta" data-contract={p.contract} data-capabilities={p.capabilities.join(' ')}>
                        <span className="muted small" title="The processor contract it targets">contract {p.contract}</span>
                        <Capabilities list={p.capabilities} />
                      </div>
                    </td>
                    <td className="num">v{p.version}</td>
                    <td className="num">{p.used_by.length}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {selectedName ? (
            <ProcessorDetail key={selectedName} name={selectedName} onDeleted={() => {
              void list.reload();
              navigate('/processors');
            }} />
          ) : (
            <div className="card muted center">Choose a processor to see its versions, its config schema and the streams that use it.</div>
          )}
        </div>
      )}
    </div>
  );
}

function Upload({ onUploaded }: { onUploaded: (p: ProcessorView) => void }) {
  const [file, setFile] = useState<File>();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string>();

  const choose = (f: File | undefined) => {
    if (!f) return;
    setFile(f);
    setError(undefined);
    setDone(undefined);
    if (!name) setName(nameFromFile(f.name));
  };

  const upload = async () => {
    if (!file) return;
    setBusy(true);
    setError(undefined);
    try {
      const q = new URLSearchParams({ name });
      if (description) q.set('description', description);
      const p = await raw<ProcessorView>('POST', `/api/v1/processors?${q}`, await file.arrayBuffer(), 'application/wasm');
      setDone(`Uploaded ${p.name} version ${p.version}.`);
      setFile(undefined);
      setName('');
      setDescription('');
      onUploaded(p);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card upload" aria-label="Upload a processor">
      <Dropzone
        file={file}
        onChoose={choose}
        accept=".wasm,application/wasm"
        inputLabel="Choose a .wasm file"
        prompt={
          <>
            <strong>Drop a .wasm component here</strong>
            <div className="muted small">built for the airtruct:processor world (see the processor guide)</div>
          </>
        }
      />
      {file && (
        <div className="upload-form">
          <div className="field">
            <label className="field-label" htmlFor="proc-name">
              Name<span className="req"> *</span>
            </label>
            <input id="proc-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="my-processor" />
            <p className="help">a-z, 0-9, - and _; an existing name gets a new version.</p>
          </div>
          <div className="field grow">
            <label className="field-label" htmlFor="proc-desc">
              Description
            </label>
            <input id="proc-desc" value={description} onChange={(e) => setDescription(e.target.value)} placeholder="What it does (optional)" />
          </div>
          <button className="btn primary" onClick={upload} disabled={busy || !name}>
            {busy ? 'Uploading…' : 'Upload'}
          </button>
        </div>
      )}
      <ErrorBanner error={error} title="Upload refused" />
      {done && <div className="banner success">{done}</div>}
    </section>
  );
}

/** The fields of a described config: name, type, whether required, description. */
function SchemaSummary({ schema }: { schema: unknown }) {
  const s = (schema && typeof schema === 'object' ? schema : {}) as { properties?: Record<string, { type?: unknown; description?: string; enum?: unknown[] }>; required?: string[]; description?: string };
  const props = Object.entries(s.properties ?? {});
  if (props.length === 0) return <p className="muted">{s.description ?? 'It describes no config fields.'}</p>;
  const req = new Set(s.required ?? []);
  return (
    <table className="table compact" aria-label="Config fields">
      <thead>
        <tr>
          <th>Field</th>
          <th>Type</th>
          <th>Description</th>
        </tr>
      </thead>
      <tbody>
        {props.map(([k, p]) => (
          <tr key={k}>
            <td className="nowrap">
              <code>{k}</code>
              {req.has(k) && <span className="req" title="required"> *</span>}
            </td>
            <td className="muted small">{p.enum ? p.enum.map(String).join(' | ') : Array.isArray(p.type) ? p.type.join(' | ') : String(p.type ?? 'any')}</td>
            <td>{p.description}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ProcessorDetail({ name, onDeleted }: { name: string; onDeleted: () => void }) {
  const p = useLoad(() => ok(api.GET('/api/v1/processors/{name}', { params: { path: { name } } })), [name]);
  const versions = useLoad(() => ok(api.GET('/api/v1/processors/{name}/versions', { params: { path: { name } } })), [name, p.data?.version]);
  const { canEdit } = useAccess();
  const [confirm, setConfirm] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  if (p.error) return <ErrorBanner error={p.error} />;
  if (!p.data) return <div className="card muted">Loading…</div>;
  const d = p.data;
  return (
    <section className="card processor-detail" aria-label={`Processor ${name}`}>
      <div className="section-head">
        <h2>{d.name}</h2>
        <span className="tag">v{d.version}</span>
        <div className="spacer" />
        {!canEdit ? null : d.used_by.length === 0 ? (
          <button
            className="btn small danger-ghost"
            onClick={() => {
              setError(undefined);
              setConfirm(true);
            }}
          >
            Delete
          </button>
        ) : (
          <span className="muted small">In use: change those streams before deleting it.</span>
        )}
      </div>
      <p>{d.description || d.described_description}</p>
      <dl className="facts">
        <dt>It says it is</dt>
        <dd>
          {d.described_name} {d.described_version && <span className="muted">{d.described_version}</span>}
        </dd>
        <dt>Contract</dt>
        <dd data-contract={d.contract}>
          <code>airtruct:processor@{d.contract}</code>{' '}
          <span className="muted small">{d.contract === '0.1.0' ? 'transforms messages; it cannot call the host' : 'may call the host for what it asks for'}</span>
        </dd>
        <dt>Capabilities</dt>
        <dd data-capabilities={d.capabilities.join(' ')}>
          <Capabilities list={d.capabilities} none={<span className="muted">none: it asks for no resource</span>} />
          {d.capabilities.length > 0 && (
            <div className="muted small">
              A stream that uses it grants it a resource of each, declared under <code>resources</code>, by name in <code>grants</code>.
            </div>
          )}
        </dd>
        <dt>Use it as</dt>
        <dd>
          <code>{d.capabilities.length > 0 ? `wasm: { name: ${d.name}, config: {...}, grants: [...] }` : `wasm: { name: ${d.name}, config: {...} }`}</code>
        </dd>
      </dl>
      <h3>Used by</h3>
      {d.used_by.length === 0 ? (
        <p className="muted">No stream uses it.</p>
      ) : (
        <ul className="plain">
          {d.used_by.map((u) => (
            <li key={u.stream_id}>
              <Link to={`/streams/${u.stream_id}`}>{u.stream_name}</Link> <span className="muted small">{u.version ? `pinned to v${u.version}` : 'latest'}</span>
            </li>
          ))}
        </ul>
      )}
      <h3>Config</h3>
      <SchemaSummary schema={d.config_schema} />
      <details className="raw">
        <summary>The JSON Schema it describes</summary>
        <pre className="code-block">{JSON.stringify(d.config_schema, null, 2)}</pre>
      </details>
      <h3>Versions</h3>
      <table className="table compact" aria-label="Processor versions">
        <thead>
          <tr>
            <th>Version</th>
            <th>Contract</th>
            <th>Uploaded</th>
            <th className="num">Size</th>
            <th>SHA-256</th>
          </tr>
        </thead>
        <tbody>
          {(versions.data ?? []).map((v) => (
            <tr key={v.version}>
              <td>v{v.version}</td>
              <td className="muted small">{v.contract}</td>
              <td className="muted small">{fmtTime(v.created_at)}</td>
              <td className="num">{fmtBytes(v.size)}</td>
              <td>
                <code className="small" title={v.sha256}>
                  {v.sha256.slice(0, 12)}…
                </code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {confirm && (
        <Confirm
          title={`Delete ${d.name}?`}
          confirm="Delete processor"
          danger
          busy={busy}
          error={error}
          onCancel={() => setConfirm(false)}
          onConfirm={async () => {
            setBusy(true);
            try {
              await ok(api.DELETE('/api/v1/processors/{name}', { params: { path: { name } } }));
              setConfirm(false);
              onDeleted();
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          All {d.versions} version{d.versions === 1 ? '' : 's'} of {d.name} are deleted.
        </Confirm>
      )}
    </section>
  );
}
