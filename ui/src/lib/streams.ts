import { api, ok } from '../api/client';
import type { StreamView } from '../api/types';

export async function setStatus(id: string, status: 'active' | 'paused'): Promise<StreamView> {
  return ok(api.POST('/api/v1/streams/{id}/status', { params: { path: { id } }, body: { status } }));
}

export async function deleteStream(id: string): Promise<void> {
  await ok(api.DELETE('/api/v1/streams/{id}', { params: { path: { id } } }));
}

export interface Rates {
  in?: number;
  out?: number;
  err?: number;
}

/**
 * Messages per second from readings of cumulative counters, over the last `windowMs` (workers report about once
 * a second, so neighbouring readings alone would jump).
 */
export class RateTracker {
  private readings = new Map<string, { at: number; received: number; sent: number; failed: number }[]>();
  constructor(private windowMs = 10000) {}

  push(id: string, c: { received: number; sent: number; failed: number }, at = Date.now()): Rates {
    const list = this.readings.get(id) ?? [];
    list.push({ at, received: c.received, sent: c.sent, failed: c.failed });
    while (list.length > 2 && at - list[1].at >= this.windowMs) list.shift();
    this.readings.set(id, list);
    const first = list[0];
    const secs = (at - first.at) / 1000;
    if (list.length < 2 || secs < 1.5) return {};
    const r = (a: number, b: number) => (a >= b ? (a - b) / secs : undefined);
    return { in: r(c.received, first.received), out: r(c.sent, first.sent), err: r(c.failed, first.failed) };
  }
}
