import { useRef, useState } from 'react';
import { ApiError, api, download, ok, raw } from '../api/client';
import type { FileView } from '../api/types';
import { ConfirmAction, CopyButton, Dropzone, Empty, ErrorBanner, PageHeader } from '../components/ui';
import { fmtBytes, fmtTime } from '../lib/format';
import { useAccess } from '../lib/access';
import { useLoad } from '../lib/hooks';

function fileUrl(name: string): string {
  return `/api/v1/files/${encodeURIComponent(name)}`;
}

export function FilesPage() {
  const { canEdit } = useAccess();
  const list = useLoad(() => ok(api.GET('/api/v1/files')), []);
  const files = list.data ?? [];
  // The upload control's state lives here, so that a row's Replace can hand it a file under that row's name.
  const [file, setFile] = useState<File>();
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string>();
  const [deleting, setDeleting] = useState<FileView>();
  const [downloadError, setDownloadError] = useState<unknown>();
  const uploadRef = useRef<HTMLElement>(null);

  const choose = (f: File | undefined, as?: string) => {
    if (!f) return;
    setFile(f);
    setError(undefined);
    setDone(undefined);
    // The file's own name, unless it replaces a listed one; either can be edited before the upload.
    setName(as ?? f.name);
    if (as) uploadRef.current?.scrollIntoView({ block: 'nearest' });
  };

  const upload = async () => {
    if (!file) return;
    const n = name.trim();
    setBusy(true);
    setError(undefined);
    setDone(undefined);
    try {
      // `.` and `..` cannot travel as a path segment (the browser resolves them); the API refuses them anyway.
      if (n === '.' || n === '..') throw new ApiError(400, "a file name may not start with '.'");
      const replaced = files.some((f) => f.name === n);
      const f = await raw<FileView>('PUT', fileUrl(n), await file.arrayBuffer(), 'application/octet-stream');
      setDone(`${replaced ? 'Replaced' : 'Uploaded'} ${f.name} (${fmtBytes(f.size)}); configs read it as ${f.path}.`);
      setFile(undefined);
      setName('');
      await list.reload();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <PageHeader
        title="Files"
        sub="Files streams read (a lookup table, a JSON Schema, a CA certificate), named in a config by their path: a file input's path, a schema file, a Kafka ssl.ca.location."
      />
      {canEdit && (
        <Upload
          sectionRef={uploadRef}
          file={file}
          name={name}
          exists={files.some((f) => f.name === name.trim())}
          busy={busy}
          error={error}
          done={done}
          onChoose={(f) => choose(f)}
          onName={setName}
          onUpload={upload}
        />
      )}
      <ErrorBanner error={downloadError} title="Cannot download" />
      <ErrorBanner error={list.error} title="Cannot load the files" />
      {list.data && files.length === 0 && <Empty>No file uploaded yet.{canEdit && ' Drop one above.'}</Empty>}
      {files.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="Files">
            <thead>
              <tr>
                <th>Name</th>
                <th className="num">Size</th>
                <th>Updated</th>
                <th>Path</th>
                <th className="actions-col" />
              </tr>
            </thead>
            <tbody>
              {files.map((f) => (
                <tr key={f.name} data-file={f.name}>
                  <td className="strong">{f.name}</td>
                  <td className="num nowrap">{fmtBytes(f.size)}</td>
                  <td className="muted small nowrap">{fmtTime(f.updated_at)}</td>
                  <td>
                    <CopyPath name={f.name} path={f.path} />
                  </td>
                  <td className="actions-col">
                    <a
                      className="btn small"
                      href={fileUrl(f.name)}
                      download={f.name}
                      onClick={(e) => {
                        e.preventDefault();
                        setDownloadError(undefined);
                        download(fileUrl(f.name), f.name).catch(setDownloadError);
                      }}
                    >
                      Download
                    </a>
                    {canEdit && (
                      <>
                        <label className="btn small" title={`Upload a file as ${f.name}, in its place`}>
                          Replace
                          <input
                            type="file"
                            className="visually-hidden"
                            aria-label={`Replace ${f.name} with a file`}
                            onChange={(e) => {
                              choose(e.target.files?.[0], f.name);
                              e.target.value = '';
                            }}
                          />
                        </label>
                        <button
                          className="btn small danger-ghost"
                          onClick={() => {
                            setDeleting(f);
                          }}
                        >
                          Delete
                        </button>
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {deleting && (
        <ConfirmAction
          title={`Delete ${deleting.name}?`}
          confirm="Delete file"
          danger
          onCancel={() => setDeleting(undefined)}
          onConfirm={async () => {
            await ok(api.DELETE('/api/v1/files/{name}', { params: { path: { name: deleting.name } } }));
            setDeleting(undefined);
            await list.reload();
          }}
        >
          Streams that read <code>{deleting.path}</code> fail to open it until a file of that name is uploaded again.
        </ConfirmAction>
      )}
    </div>
  );
}

function Upload(props: {
  sectionRef: React.RefObject<HTMLElement | null>;
  file: File | undefined;
  name: string;
  exists: boolean;
  busy: boolean;
  error: unknown;
  done: string | undefined;
  onChoose: (f: File | undefined) => void;
  onName: (name: string) => void;
  onUpload: () => void;
}) {
  const { file, name, exists, busy } = props;
  return (
    <section ref={props.sectionRef} className="card upload" aria-label="Upload a file">
      <Dropzone
        file={file}
        onChoose={props.onChoose}
        inputLabel="Choose a file to upload"
        prompt={
          <>
            <strong>Drop a file here</strong>
            <div className="muted small">any kind, up to 16 MiB</div>
          </>
        }
      />
      {file && (
        <div className="upload-form">
          <div className="field grow">
            <label className="field-label" htmlFor="file-name">
              Name<span className="req"> *</span>
            </label>
            <input id="file-name" value={name} onChange={(e) => props.onName(e.target.value)} placeholder="lookup.csv" autoComplete="off" />
            <p className="help">
              {exists
                ? `A file named ${name.trim()} exists: it is replaced, and streams read the new content when they next open it.`
                : "Letters, digits, '.', '_' and '-', not starting with '.'; an existing name is replaced."}
            </p>
          </div>
          <button className="btn primary" onClick={props.onUpload} disabled={busy || !name.trim()}>
            {busy ? 'Uploading…' : exists ? 'Replace' : 'Upload'}
          </button>
        </div>
      )}
      <ErrorBanner error={props.error} title="Upload refused" />
      {props.done && <div className="banner success">{props.done}</div>}
    </section>
  );
}

/** The path a config names, with a copy button where the browser allows the clipboard (https or localhost). */
function CopyPath({ name, path }: { name: string; path: string }) {
  return (
    <span className="file-path">
      <code>{path}</code>
      <CopyButton text={path} label={`Copy the path of ${name}`} />
    </span>
  );
}
