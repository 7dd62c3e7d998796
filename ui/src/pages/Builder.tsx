// The stream builder: the pipeline drawn and edited component by component, with a YAML view of the same
// config kept in sync, the stream's resources, stream settings, validation errors at their fields, and the test
// panel.
import { useEffect, useMemo, useState } from 'react';
import { Link, useNavigate, useParams } from 'react-router';
import YAML from 'yaml';
import { ApiError, api, ok, type Detail } from '../api/client';
import type { Catalogue } from '../api/types';
import { ComponentEditor, KindPicker, newComponent } from '../components/ComponentEditor';
import { CatalogueContext } from '../components/NestedComponents';
import { Pipeline, type Selection } from '../components/Pipeline';
import { ResourcesContext } from '../components/ResourceFields';
import { ResourcesEditor } from '../components/ResourcesEditor';
import { FieldErrors } from '../components/SchemaForm';
import { SettingsEditor, settingsSummary } from '../components/SettingsEditor';
import { TestPanel } from '../components/TestPanel';
import { ErrorBanner, PageHeader } from '../components/ui';
import { type Config, isObj, kindOf, optionsOf, ordered, processorsOf, toYaml, withProcessors } from '../lib/config';
import { type FieldError, type Path, equal, fieldId, startsWith, toFieldErrors, under } from '../lib/paths';
import { declaredOf } from '../lib/resources';
import type { Schema } from '../lib/schema';

type Status = 'active' | 'paused';

/** Which pipeline node an error path belongs to. */
function nodeOf(path: Path): Selection | undefined {
  if (path[0] !== 'config') return undefined;
  if (path[1] === 'input') return 'input';
  if (path[1] === 'output') return 'output';
  if (path[1] === 'pipeline' && path[2] === 'processors' && typeof path[3] === 'number') return `p${path[3]}`;
  if (path[1] === 'resources') return 'resources';
  if (['on_error', 'buffer', 'replicas', 'tests'].includes(String(path[1])) || (path[1] === 'pipeline' && path[2] !== 'processors')) return 'settings';
  return undefined;
}

function nodePath(s: Selection): Path {
  if (s === 'input' || s === 'output') return ['config', s];
  if (s.startsWith('p')) return ['config', 'pipeline', 'processors', Number(s.slice(1))];
  return ['config'];
}

/** ` (2 problems)`, or nothing. */
function problemsText(n: number): string {
  return n > 0 ? ` (${n} problem${n === 1 ? '' : 's'})` : '';
}

function samplesFrom(cfg: Config): string {
  const o = isObj(cfg.input) && isObj(cfg.input.generate) ? cfg.input.generate : undefined;
  const payload = typeof o?.payload === 'string' ? o.payload : undefined;
  if (payload) return [1, 2, 3].map((n) => payload.split('{{seq}}').join(String(n))).join('\n');
  return '{"id": 1, "name": "ada"}\n{"id": 2, "name": "grace"}';
}

export function BuilderPage() {
  const { id } = useParams();
  const navigate = useNavigate();
  const [catalogue, setCatalogue] = useState<Catalogue>();
  const [streamSchema, setStreamSchema] = useState<Schema>();
  const [streamSchemaError, setStreamSchemaError] = useState<unknown>();
  const [loadError, setLoadError] = useState<unknown>();
  const [name, setName] = useState('');
  const [status, setStatus] = useState<Status>('active');
  const [version, setVersion] = useState<number>();
  const [cfg, setCfg] = useState<Config>({});
  const [yamlText, setYamlText] = useState('');
  const [yamlError, setYamlError] = useState<string>();
  const [selected, setSelected] = useState<Selection>('input');
  const [errors, setErrors] = useState<FieldError[]>([]);
  const [saveError, setSaveError] = useState<ApiError>();
  const [checked, setChecked] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [loaded, setLoaded] = useState(!id);

  useEffect(() => {
    ok(api.GET('/api/v1/components')).then(setCatalogue, setLoadError);
    // The stream settings' forms; the rest of the builder works without it.
    ok(api.GET('/api/v1/schema/stream')).then((s: unknown) => {
      if (isObj(s)) setStreamSchema(s);
      else setStreamSchemaError(new ApiError(0, 'the stream schema is not a JSON object'));
    }, setStreamSchemaError);
  }, []);

  useEffect(() => {
    if (!id) return;
    ok(api.GET('/api/v1/streams/{id}', { params: { path: { id } } })).then((s) => {
      const c = isObj(s.config) ? ordered(s.config) : {};
      setName(s.name);
      setStatus(s.status === 'paused' ? 'paused' : 'active');
      setVersion(s.version);
      setCfg(c);
      setYamlText(toYaml(c));
      setLoaded(true);
    }, setLoadError);
  }, [id]);

  /** A change from the form: the YAML follows. */
  const change = (next: Config, clear?: Path) => {
    setCfg(next);
    setYamlText(toYaml(next));
    setYamlError(undefined);
    setChecked(undefined);
    if (clear) setErrors((es) => es.filter((e) => !startsWith(e.path, clear)));
  };

  /** A change in the YAML: the form follows while it parses to a config. */
  const changeYaml = (text: string) => {
    setYamlText(text);
    setChecked(undefined);
    try {
      const v = text.trim() === '' ? {} : YAML.parse(text);
      if (!isObj(v)) {
        setYamlError('a stream config is a mapping (input:, pipeline:, output:, ...)');
        return;
      }
      setYamlError(undefined);
      setCfg(v);
    } catch (e) {
      setYamlError((e as Error).message.split('\n')[0]);
    }
  };

  const processors = processorsOf(cfg);
  const showProblems = (details: Detail[], prefix: Path = []) => {
    const fe = toFieldErrors(details, prefix);
    setErrors(fe);
    const first = fe.map((e) => nodeOf(e.path)).find((n) => n !== undefined);
    if (first) setSelected(first);
  };

  // What is sent: the config, or the YAML text itself while it does not parse (the API says what is wrong).
  const payloadConfig = (): unknown => (yamlError ? yamlText : cfg);

  const save = async () => {
    setBusy(true);
    setSaveError(undefined);
    setChecked(undefined);
    try {
      const body = { name, status, config: payloadConfig() as never };
      const s = id
        ? await ok(api.PUT('/api/v1/streams/{id}', { params: { path: { id } }, body }))
        : await ok(api.POST('/api/v1/streams', { body }));
      navigate(`/streams/${s.id}`);
    } catch (e) {
      if (e instanceof ApiError) {
        setSaveError(e);
        showProblems(e.details);
      } else setSaveError(new ApiError(0, String(e)));
    } finally {
      setBusy(false);
    }
  };

  const validate = async () => {
    setBusy(true);
    setSaveError(undefined);
    try {
      const r = await ok(api.POST('/api/v1/streams/validate', { body: { config: payloadConfig() as never } }));
      if (r.valid) {
        setErrors([]);
        setChecked('The config is valid: it can run.');
      } else {
        setChecked(undefined);
        setSaveError(new ApiError(400, `The config is not valid: ${r.errors.length} problem(s).`, []));
        showProblems(r.errors, ['config']);
      }
    } catch (e) {
      setSaveError(e instanceof ApiError ? e : new ApiError(0, String(e)));
    } finally {
      setBusy(false);
    }
  };

  const errorCount = (s: Selection) => (s === 'settings' || s === 'resources' ? errors.filter((e) => nodeOf(e.path) === s).length : under(errors, nodePath(s)).length);

  const move = (from: number, to: number) => {
    const list = [...processors];
    const [p] = list.splice(from, 1);
    list.splice(to, 0, p);
    change(withProcessors(cfg, list));
    // Errors name processors by position: after a move they would point at the wrong one.
    setErrors((es) => es.filter((e) => !startsWith(e.path, ['config', 'pipeline', 'processors'])));
    if (selected === `p${from}`) setSelected(`p${to}`);
  };

  const remove = (i: number) => {
    change(withProcessors(cfg, processors.filter((_, j) => j !== i)));
    setErrors((es) => es.filter((e) => !startsWith(e.path, ['config', 'pipeline', 'processors'])));
    if (selected === `p${i}`) setSelected(processors.length > 1 ? `p${Math.max(0, i - 1)}` : 'add');
  };

  const labelOf = (p: unknown): string => {
    const k = kindOf(p);
    const o = optionsOf(p);
    if (k === 'wasm' && isObj(o) && typeof o.name === 'string') return o.name;
    return k ?? '?';
  };

  const initialSamples = useMemo(() => samplesFrom(cfg), [cfg]);
  const declared = useMemo(() => declaredOf(cfg.resources), [cfg.resources]);
  const resourcesContext = useMemo(() => ({ declared, open: () => setSelected('resources') }), [declared]);
  const otherErrors = errors.filter((e) => nodeOf(e.path) === undefined && !equal(e.path, ['name']));

  if (loadError) {
    return (
      <div className="page">
        <PageHeader title={id ? 'Edit stream' : 'New stream'} />
        <ErrorBanner error={loadError} title="Cannot open the builder" />
      </div>
    );
  }
  if (!catalogue || !loaded) return <div className="page muted">Loading…</div>;

  let editor: React.ReactNode = null;
  if (selected === 'input' || selected === 'output') {
    editor = (
      <ComponentEditor
        title={selected === 'input' ? 'Input' : 'Output'}
        kinds={selected === 'input' ? catalogue.inputs : catalogue.outputs}
        value={cfg[selected]}
        onChange={(v) => change(ordered({ ...cfg, [selected]: v }), ['config', selected])}
        path={['config', selected]}
        errors={under(errors, ['config', selected])}
      />
    );
  } else if (selected === 'resources') {
    editor = <ResourcesEditor cfg={cfg} catalogue={catalogue} onChange={change} errors={errors} />;
  } else if (selected === 'settings') {
    editor = <SettingsEditor cfg={cfg} catalogue={catalogue} schema={streamSchema} schemaError={streamSchemaError} onChange={(c) => change(c)} errors={errors} />;
  } else if (selected === 'add') {
    editor = (
      <div className="component-editor">
        <div className="editor-head">
          <h3>Add a processor</h3>
        </div>
        <p className="help lead">It goes after the last one; drag it, or use its arrows, to move it.</p>
        <KindPicker
          kinds={catalogue.processors}
          uploaded={catalogue.uploaded}
          label="Processor kinds"
          onPick={(c) => {
            change(withProcessors(cfg, [...processors, newComponent(c, catalogue.processors, catalogue.uploaded)]));
            setSelected(`p${processors.length}`);
          }}
        />
      </div>
    );
  } else {
    const i = Number(selected.slice(1));
    if (i < processors.length) {
      const path: Path = ['config', 'pipeline', 'processors', i];
      editor = (
        <ComponentEditor
          title={`Processor ${i + 1}`}
          kinds={catalogue.processors}
          uploaded={catalogue.uploaded}
          value={processors[i]}
          onChange={(v) => change(withProcessors(cfg, processors.map((p, j) => (j === i ? v : p))), path)}
          path={path}
          errors={under(errors, path)}
          actions={
            <button type="button" className="btn small danger-ghost" onClick={() => remove(i)}>
              Remove
            </button>
          }
        />
      );
    }
  }

  const nameErrors = errors.filter((e) => equal(e.path, ['name']));
  return (
    <div className="page builder">
      <PageHeader
        title={id ? `Edit ${name || 'stream'}` : 'New stream'}
        sub={
          id ? (
            <>
              Saving makes version {(version ?? 0) + 1}. <Link to={`/streams/${id}`}>Back to the stream</Link>
            </>
          ) : (
            'Choose an input, add processors, choose an output.'
          )
        }
      >
        <button className="btn" onClick={validate} disabled={busy}>
          Validate
        </button>
        <button className="btn primary" onClick={save} disabled={busy}>
          {busy ? 'Saving…' : status === 'active' ? 'Save and run' : 'Save as paused'}
        </button>
      </PageHeader>

      <div className="card builder-meta">
        <div className={`field grow${nameErrors.length ? ' has-error' : ''}`} id={fieldId(['name'])}>
          <label className="field-label" htmlFor="stream-name">
            Name<span className="req"> *</span>
          </label>
          <input id="stream-name" value={name} placeholder="orders-to-warehouse" onChange={(e) => setName(e.target.value)} />
          <FieldErrors errors={nameErrors} />
        </div>
        <div className="field">
          <span className="field-label" id="status-label">
            Status when saved
          </span>
          <div className="segmented" role="radiogroup" aria-labelledby="status-label">
            {(['active', 'paused'] as Status[]).map((s) => (
              <button type="button" key={s} role="radio" aria-checked={status === s} className={status === s ? 'on' : ''} onClick={() => setStatus(s)}>
                {s === 'active' ? 'Active' : 'Paused'}
              </button>
            ))}
          </div>
        </div>
        <p className="help meta-help">{status === 'active' ? 'Runs as soon as it is saved; an invalid config is refused with every problem.' : 'Saved as a draft, even when not valid yet; resume it later.'}</p>
      </div>

      {saveError && (
        <div className="banner error" role="alert" aria-label="Problems">
          <strong>{saveError.message}</strong>
          {errors.length > 0 && (
            <ul className="problems">
              {errors.map((e, i) => (
                <li key={i}>
                  <button
                    type="button"
                    className="linkish"
                    onClick={() => {
                      const n = nodeOf(e.path);
                      if (n) setSelected(n);
                      window.setTimeout(() => document.getElementById(fieldId(e.path))?.scrollIntoView({ block: 'center', behavior: 'smooth' }), 50);
                    }}
                  >
                    <code>{e.text}</code>
                  </button>{' '}
                  {e.message.split('\n')[0]}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {checked && <div className="banner success">{checked}</div>}

      <div className="card pipeline-card">
        <Pipeline
          input={cfg.input}
          processors={processors}
          output={cfg.output}
          selected={selected}
          onSelect={setSelected}
          onMove={move}
          onRemove={remove}
          errorCount={errorCount}
          labelOf={labelOf}
        />
        <div className="pipeline-foot">
          <span className="muted small">
            {settingsSummary(cfg)} · Resources: {declared.length === 0 ? 'none' : declared.map((d) => d.name).join(', ')}
          </span>
          <div className="foot-actions">
            <button type="button" className={`btn small${selected === 'resources' ? ' on' : ''}`} onClick={() => setSelected('resources')}>
              Resources{declared.length > 0 ? ` (${declared.length})` : ''}
              {problemsText(errorCount('resources'))}
            </button>
            <button type="button" className={`btn small${selected === 'settings' ? ' on' : ''}`} onClick={() => setSelected('settings')}>
              Stream settings{problemsText(errorCount('settings'))}
            </button>
          </div>
        </div>
      </div>

      <div className="builder-split">
        <section className="card editor-card" aria-label="Component">
          {/* The catalogue, for the components nested in another's options (a switch's cases, a broker's outputs). */}
          <CatalogueContext.Provider value={catalogue}>
            {/* The declared resources, for the processors' resource selects and grants. */}
            <ResourcesContext.Provider value={resourcesContext}>
              <div key={selected}>{editor}</div>
            </ResourcesContext.Provider>
          </CatalogueContext.Provider>
          {otherErrors.length > 0 && (
            <div className="other-errors">
              <FieldErrors errors={otherErrors} />
            </div>
          )}
        </section>
        <section className="card yaml-card" aria-label="YAML">
          <div className="section-head">
            <h2>YAML</h2>
            <span className="muted small">the same config; edit either side</span>
          </div>
          <textarea className="code yaml" aria-label="YAML config" spellCheck={false} value={yamlText} onChange={(e) => changeYaml(e.target.value)} placeholder="# The config as YAML: input, pipeline, output. Choose components on the left, or write it here." />
          {yamlError && <p className="help warn">Not valid YAML yet: {yamlError}</p>}
        </section>
      </div>

      <TestPanel
        config={payloadConfig()}
        labelOf={labelOf}
        initial={initialSamples}
        cases={Array.isArray(cfg.tests) ? cfg.tests : []}
        onSaveCase={(c) => change({ ...cfg, tests: [...(Array.isArray(cfg.tests) ? cfg.tests : []), c] })}
        onProblems={(d) => (d.length ? showProblems(d) : setErrors((es) => es.filter((e) => !startsWith(e.path, ['config', 'pipeline', 'processors']) && !startsWith(e.path, ['config', 'resources']))))} />
    </div>
  );
}
