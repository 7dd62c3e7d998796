import { useCallback, useEffect, useRef, useState } from 'react';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => Promise<void>;
}

/**
 * Loads `fn` when `deps` change and, with `everyMs`, again on that period (never two requests at once; a
 * failed poll keeps the last data and reports the error).
 */
export function useLoad<T>(fn: () => Promise<T>, deps: unknown[], everyMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const busy = useRef(false);
  const alive = useRef(true);
  const generation = useRef(0);

  const reload = useCallback(async () => {
    if (busy.current) return;
    busy.current = true;
    const gen = generation.current;
    try {
      const d = await fnRef.current();
      if (alive.current && gen === generation.current) {
        setData(d);
        setError(undefined);
      }
    } catch (e) {
      if (alive.current && gen === generation.current) setError(e as Error);
    } finally {
      busy.current = false;
      if (alive.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    alive.current = true;
    generation.current++;
    busy.current = false;
    setLoading(true);
    void reload();
    if (!everyMs) return () => void (alive.current = false);
    const t = window.setInterval(() => void reload(), everyMs);
    return () => {
      alive.current = false;
      window.clearInterval(t);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);

  return { data, error, loading, reload };
}

/** A clock that ticks every `ms`, for "n s ago" texts. */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}
