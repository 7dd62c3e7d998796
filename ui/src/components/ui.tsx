import { useEffect, useRef } from 'react';
import type { Detail } from '../api/client';
import { ApiError } from '../api/client';

export function StatusBadge({ status }: { status: string | null | undefined }) {
  const s = status ?? 'unknown';
  return <span className={`badge status-${s}`}>{s}</span>;
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
  error?: unknown;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const cancelRef = useRef<HTMLButtonElement>(null);
  const onCancel = useRef(props.onCancel);
  onCancel.current = props.onCancel;
  useEffect(() => {
    cancelRef.current?.focus();
    const esc = (e: KeyboardEvent) => e.key === 'Escape' && onCancel.current();
    window.addEventListener('keydown', esc);
    return () => window.removeEventListener('keydown', esc);
  }, []);
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
          <button className={`btn ${props.danger ? 'danger' : 'primary'}`} onClick={props.onConfirm} disabled={props.busy}>
            {props.confirm}
          </button>
        </div>
      </div>
    </div>
  );
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <div className="empty">{children}</div>;
}
