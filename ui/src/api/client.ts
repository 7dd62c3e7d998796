// The typed API client: openapi-fetch over the generated `schema.d.ts`, with the session token and one rule:
// any 401 from the API ends the session and sends the user back to the login page.
import createClient, { type Middleware } from 'openapi-fetch';
import type { paths } from './schema';

const TOKEN_KEY = 'airtruct.token';
const SESSION_KEY = 'airtruct.session';

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

/** The session token, and its id (as `GET /api/v1/tokens` lists it) when the login gave one. */
export function setToken(token: string | null, id?: string) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
  if (token && id) localStorage.setItem(SESSION_KEY, id);
  else localStorage.removeItem(SESSION_KEY);
}

/** The id of this browser's session among the user's tokens. */
export function getSessionId(): string | null {
  return localStorage.getItem(SESSION_KEY);
}

/** Called when the API answers 401 to a request that carried a token. */
let onExpired: () => void = () => {};
export function setOnExpired(f: () => void) {
  onExpired = f;
}

/** One problem of a validation error, with the path of the field it concerns. */
export interface Detail {
  path: string;
  message: string;
}

/** An error answer of the API, as it words it. */
export class ApiError extends Error {
  status: number;
  details: Detail[];
  constructor(status: number, message: string, details: Detail[] = []) {
    super(message);
    this.status = status;
    this.details = details;
  }
}

const auth: Middleware = {
  onRequest({ request }) {
    const token = getToken();
    if (token) request.headers.set('Authorization', `Bearer ${token}`);
    return request;
  },
  onResponse({ request, response }) {
    if (response.status === 401 && request.headers.has('Authorization')) {
      setToken(null);
      onExpired();
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: '' });
api.use(auth);

async function toError(response: Response, error: unknown): Promise<ApiError> {
  const body = error as { error?: string; details?: Detail[] } | undefined;
  if (body && typeof body === 'object' && typeof body.error === 'string') {
    return new ApiError(response.status, body.error, body.details ?? []);
  }
  return new ApiError(response.status, `${response.status} ${response.statusText || 'error'}`);
}

/** Unwraps an openapi-fetch result: the data, or an `ApiError` with the API's own words. */
export async function ok<T>(
  p: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let r;
  try {
    r = await p;
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${(e as Error).message})`);
  }
  if (!r.response.ok) throw await toError(r.response, r.error);
  return r.data as T;
}

/** A request openapi-fetch does not describe well (a raw body, a path the document lacks). */
export async function raw<T>(method: string, url: string, body?: BodyInit, contentType?: string): Promise<T> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (contentType) headers['Content-Type'] = contentType;
  let response: Response;
  try {
    response = await fetch(url, { method, headers, body });
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${(e as Error).message})`);
  }
  if (response.status === 401 && token) {
    setToken(null);
    onExpired();
  }
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!response.ok) throw errorOf(response, parsed);
  return parsed as T;
}

/** The error of a failed answer: the API's envelope when it sent one, its text, or the status. */
function errorOf(response: Response, parsed: unknown): ApiError {
  const b = parsed as { error?: string; details?: Detail[] } | undefined;
  if (b && typeof b === 'object' && typeof b.error === 'string') {
    return new ApiError(response.status, b.error, b.details ?? []);
  }
  return new ApiError(response.status, typeof parsed === 'string' && parsed ? parsed : `${response.status} ${response.statusText}`);
}

/**
 * Saves the answer of `GET url` as a file named `filename`. A plain link cannot send the session token, so the
 * bytes are fetched with it and handed to the browser as a download.
 */
export async function download(url: string, filename: string): Promise<void> {
  const headers: Record<string, string> = {};
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(url, { headers });
  } catch (e) {
    throw new ApiError(0, `the server cannot be reached (${(e as Error).message})`);
  }
  if (response.status === 401 && token) {
    setToken(null);
    onExpired();
  }
  if (!response.ok) {
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: the text itself
    }
    throw errorOf(response, parsed);
  }
  const href = URL.createObjectURL(await response.blob());
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  // The browser has taken the bytes once the click is handled; the URL is let go a little later.
  window.setTimeout(() => URL.revokeObjectURL(href), 10_000);
}
