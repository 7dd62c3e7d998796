// Names for the generated API types, so pages import them from one place.
import type { components } from './schema';

type S = components['schemas'];

export type StreamView = S['StreamView'];
export type VersionView = S['VersionView'];
export type Journey = S['Journey'];
export type Catalogue = S['Catalogue'];
export type KindDoc = S['KindDoc'];
export type UploadedKind = S['UploadedKind'];
export type TestResponse = S['TestResponse'];
export type TestOutput = S['TestOutput'];
/** `POST /api/v1/streams/tests`: each `tests:` case's result. */
export type CasesResponse = S['CasesResponse'];
export type ProcessorView = S['ProcessorView'];
export type ProcessorVersionView = S['ProcessorVersionView'];
export type WorkerView = S['WorkerView'];
export type SecretView = S['SecretView'];
/** An uploaded file streams may read, with the `path` a config names. */
export type FileView = S['FileView'];
export type StreamStatus = StreamView['status'];
/** One component's counters on a stream, keyed by its path in the config and its kind. */
export type ComponentCounters = StreamView['components'][number];

/** `GET /api/v1/streams/{id}/metrics/history`: cumulative counters every `interval_secs`, oldest first. */
export type MetricsHistory = S['HistoryView'];

/** `GET /api/v1/auth/me`: who is signed in, and with which role. */
export type Me = S['Me'];
/** What a user or a token may do: `viewer`, `editor` or `admin` (the API's `Role`). */
export type UserRole = Me['role'];
export type UserView = S['UserView'];
export type TokenView = S['TokenView'];
export type TokenCreated = S['TokenCreated'];
export type AuditEntry = S['AuditView'];
/** What a token may be used for: `api` (the REST API) or `mcp` (the `/mcp` endpoint's tools). */
export type TokenScope = S['TokenScope'];
/** `GET /api/v1/mcp/tools`: a tool a stream exposes through its `mcp_tool` input. */
export type McpTool = S['McpToolView'];
