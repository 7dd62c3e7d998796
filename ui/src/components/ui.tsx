import { useEffect, useRef, useState } from 'react';
import type { Detail } from '../api/client';
import { ApiError } from '../api/client';
import type { UserRole } from '../api/types';
import { ROLE_TEXT } from '../lib/access';
import { fmtBytes } from '../lib/format';

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const s = status ?? 'unknown';
  return <span className={`badge status-${s}`}>{s}</span>;
}

export function RoleBadge({ role }: { role: UserRole }) {
  return (
    <span className={`badge role-${role}`} title={`${role}: ${ROLE_TEXT[role]}`}>
      {role}
    </span>
  );
}

/** A page the signed-in role may not use, said instead of showing controls that would be refused. */
export function NotAllowed({ title, role, what }: { title: string; role: UserRole; what: string }) {
  return (
    <div className="page">
      <PageHeader title={title} />
      <div className="notice" role="note">
        Your role, <strong>{role}</strong>, {what}. An admin can change your role on the Users page.
      </div>
    </div>
  );
}

/** An error as the API words it, with its details when it has any. */
export function ErrorBanner({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  const message = error instanceof Error ? error.message : String(error);
  const details: Detail[] = error instanceof ApiError ? error.details : [];
  return (
    <div className="banner error" role="alert">
      {title && <strong>{title}: </strong>}
      {message}
      {details.length > 0 && (
        <ul>
          {details.map((d, i) => (
            <li key={i}>
              {d.path && <code>{d.path}</code>} {d.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function PageHeader({ title, sub, children }: { title: React.ReactNode; sub?: React.ReactNode; children?: React.ReactNode }) {
  return (
    <div className="page-header">
      <div>
        <h1>{title}</h1>
        {sub && <div className="sub">{sub}</div>}
      </div>
      <div className="actions">{children}</div>
    </div>
  );
}

/** A modal question with a confirm and a cancel button. */
export function Confirm(props: {
  title: string;
  children: React.ReactNode;
  confirm: string;
  danger?: boolean;
  busy?: boolean;
  /** The confirm button waits for something (a field of the body to be filled). */
  confirmDisabled?: boolean;
  error?: unknown;
  /** Leave the focus to a field of the body (which has `autoFocus`) instead of the cancel button. */
  fieldFocus?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  const onCancel = useRef(props.onCancel);
  onCancel.current = props.onCancel;
  const fieldFocus = props.fieldFocus;
  useEffect(() => {
    if (!fieldFocus) cancelRef.current?.focus();
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && onCancel.current();
    window.addEventListener('keydown', esc);
    return () => window.removeEventListener('keydown', esc);
  }, [fieldFocus]);
  return (
    <div className="modal-back" onMouseDown={(e) => e.target === e.currentTarget && props.onCancel()}>
      <div className="modal card" role="dialog" aria-modal="true" aria-label={props.title}>
        <h2>{props.title}</h2>
        <div className="modal-body">{props.children}</div>
        <ErrorBanner error={props.error} />
        <div className="modal-actions">
          <button ref={cancelRef} className="btn" onClick={props.onCancel} disabled={props.busy}>
            Cancel
          </button>
          <button className={`btn ${props.danger ? 'danger' : 'primary'}`} onClick={props.onConfirm} disabled={props.busy || props.confirmDisabled}>
            {props.confirm}
          </button>
        </div>
      </div>
    </div>
  );
}

/**
 * Copies `text` to the clipboard. The browser offers the clipboard only on https and localhost; elsewhere no button
 * shows, and the text beside it is selected and copied by hand.
 */
export function CopyButton({ text, label }: { text: string; label: string }) {
  const [copied, setCopied] = useState<string>();
  const clipboard = typeof navigator !== 'undefined' && navigator.clipboard ? navigator.clipboard : undefined;
  if (!clipboard) return null;
  return (
    <button
      type="button"
      className="btn small ghost"
      aria-label={label}
      onClick={() =>
        clipboard.writeText(text).then(
          () => setCopied('Copied'),
          () => setCopied('Select it to copy'),
        )
      }
      onBlur={() => setCopied(undefined)}
    >
      {copied ?? 'Copy'}
    </button>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>;
}

/** A confirmation whose action is asynchronous: it shows its own progress, and the action's error if it fails. */
export function ConfirmAction(
  props: Omit<Parameters<typeof Confirm>[0], 'busy' | 'error' | 'onConfirm'> & { onConfirm: () => Promise<void> },
) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const { onConfirm, ...rest } = props;
  return (
    <Confirm
      {...rest}
      busy={busy}
      error={error}
      onConfirm={async () => {
        setBusy(true);
        setError(undefined);
        try {
          await onConfirm();
        } catch (e) {
          setError(e);
        } finally {
          setBusy(false);
        }
      }}
    />
  );
}

/** A place to drop a file, or choose one: shows the chosen file's name and size, else `prompt`. */
export function Dropzone(props: {
  file: File | undefined;
  onChoose: (f: File | undefined) => void;
  prompt: React.ReactNode;
  accept?: string;
  inputLabel: string;
}) {
  const { file, onChoose } = props;
  const [over, setOver] = useState(false);
  return (
    <div
      className={`dropzone${over ? ' over' : ''}${file ? ' has-file' : ''}`}
      onDragOver={(e) => {
        e.preventDefault();
        setOver(true);
      }}
      onDragLeave={() => setOver(false)}
      onDrop={(e) => {
        e.preventDefault();
        setOver(false);
        onChoose(e.dataTransfer.files[0]);
      }}
      data-testid="dropzone"
    >
      {file ? (
        <div>
          <strong>{file.name}</strong> <span className="muted">({fmtBytes(file.size)})</span>
        </div>
      ) : (
        <div>{props.prompt}</div>
      )}
      <label className="btn small">
        {file ? 'Choose another file' : 'Choose a file'}
        <input
          type="file"
          accept={props.accept}
          className="visually-hidden"
          aria-label={props.inputLabel}
          onChange={(e) => {
            onChoose(e.target.files?.[0]);
            // The same file may be chosen again after an upload.
            e.target.value = '';
          }}
        />
      </label>
    </div>
  );
}
