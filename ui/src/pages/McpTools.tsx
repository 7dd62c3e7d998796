// The tools streams expose to agents through an `mcp_tool` input, and the `/mcp` endpoint agents call them at.
// The console's own path is /tools: the server answers /mcp itself, so a reload there would never reach the console.
import { Link } from 'react-router';
import { api, ok } from '../api/client';
import type { McpTool } from '../api/types';
import { CopyButton, Empty, ErrorBanner, PageHeader } from '../components/ui';
import { useAccess } from '../lib/access';
import { useLoad } from '../lib/hooks';

/**
 * A stream that exposes a tool, as the empty page shows it. The mapping says its arguments are integers: VRL
 * refuses arithmetic on fields of unknown type (E103), and a stream saved as active must compile.
 */
const EXAMPLE = `input:
  mcp_tool:
    name: order_total
    description: The total of an order line
    input_schema:
      type: object
      properties:
        qty: { type: integer }
        price: { type: integer }
      required: [qty, price]
pipeline:
  processors:
    - mapping: '.total = int!(.qty) * int!(.price)'
output:
  sync_response: {}`;

export function McpToolsPage() {
  const { canEdit } = useAccess();
  // Polled, so that a tool's state follows its stream being paused or resumed.
  const list = useLoad(() => ok(api.GET('/api/v1/mcp/tools')), [], 5000);
  const tools = list.data ?? [];
  const callable = tools.filter((t) => t.callable).length;
  const endpoint = `${window.location.origin}/mcp`;
  return (
    <div className="page">
      <PageHeader
        title="MCP tools"
        sub={list.data && tools.length > 0 ? `${tools.length} tool${tools.length === 1 ? '' : 's'}, ${callable} callable` : 'Streams that agents call as tools, over the Model Context Protocol.'}
      />
      <section className="card" aria-label="Endpoint">
        <div className="section-head">
          <h2>Endpoint</h2>
          <span className="muted small">Model Context Protocol, Streamable HTTP</span>
        </div>
        <div className="file-path">
          <code>{endpoint}</code>
          <CopyButton text={endpoint} label="Copy the MCP endpoint" />
        </div>
        <p className="help endpoint-help">
          Point an agent (an MCP client) here with an API token that has the <strong>MCP tools</strong> scope, sent as{' '}
          <code>Authorization: Bearer TOKEN</code>; create one on the <Link to="/account">Account page</Link>. Agents see and call the
          tools of active streams only: a call's arguments become one message of the stream, and what its{' '}
          <code>sync_response</code> output answers is the tool's result.
        </p>
      </section>
      <ErrorBanner error={list.error} title="Cannot load the tools" />
      {list.data && tools.length === 0 && (
        <Empty>
          <p className="empty-lead">No stream exposes a tool yet.</p>
          <p>
            A stream becomes a tool with an <code>mcp_tool</code> input (the tool's name, description and the JSON Schema of its arguments)
            and a <code>sync_response</code> output, whose answer is the tool's result:
          </p>
          <pre className="code-block example">
            {EXAMPLE}
          </pre>
          {canEdit && (
            <p>
              <Link to="/streams/new">Build one</Link>: pick the <code>mcp_tool</code> input, or paste the YAML above into the builder's YAML view.
            </p>
          )}
        </Empty>
      )}
      {tools.length > 0 && (
        <div className="card flush">
          <table className="table" aria-label="MCP tools">
            <thead>
              <tr>
                <th>Tool</th>
                <th>Description</th>
                <th>Stream</th>
                <th>State</th>
                <th>Arguments</th>
              </tr>
            </thead>
            <tbody>
              {tools.map((t) => (
                <ToolRow key={t.name} tool={t} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function ToolRow({ tool }: { tool: McpTool }) {
  const args = argumentsOf(tool.input_schema);
  return (
    <tr data-tool={tool.name}>
      <td>
        <span className="kind">{tool.name}</span>
      </td>
      <td className="tool-description">{tool.description || <span className="muted">none</span>}</td>
      <td>
        <Link to={`/streams/${tool.stream_id}`}>{tool.stream_name}</Link>
      </td>
      <td className="nowrap">
        {tool.callable ? (
          <span className="badge status-active" title="Its stream is active: agents see and call it">
            callable
          </span>
        ) : (
          <span className="badge status-paused" title="Agents do not see it until its stream is active">
            stream not active
          </span>
        )}
      </td>
      <td className="tool-schema">
        {args.length > 0 && (
          <div className="small">
            {args.map((a) => (
              <span key={a.name} className="chip" title={a.required ? 'required' : 'optional'}>
                {a.name}
                {a.required && '*'}
              </span>
            ))}
          </div>
        )}
        <details className="raw">
          <summary aria-label={`Input schema of ${tool.name}`}>Input schema</summary>
          <pre className="code-block">
            {JSON.stringify(tool.input_schema, null, 2)}
          </pre>
        </details>
      </td>
    </tr>
  );
}

/** The top-level arguments an object schema names, the required ones marked. */
function argumentsOf(schema: unknown): { name: string; required: boolean }[] {
  if (!schema || typeof schema !== 'object') return [];
  const s = schema as { properties?: unknown; required?: unknown };
  if (!s.properties || typeof s.properties !== 'object') return [];
  const required = Array.isArray(s.required) ? s.required : [];
  return Object.keys(s.properties).map((name) => ({ name, required: required.includes(name) }));
}
