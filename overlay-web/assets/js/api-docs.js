// The API reference (/api/docs): fetches /api/v1/openapi.json and renders it, operations
// grouped by tag (parameters, request body, responses, security), then every component
// schema. Everything is built with DOM nodes and textContent: the document's text is never
// read as HTML. No dependencies, no network beyond this hub.

const SPEC_URL = '/api/v1/openapi.json';
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const AUTH_LABELS = { admin_token: 'admin token', viewer_token: 'viewer token' };

/** An element with attributes and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Text with `code` spans (the descriptions' only markup). */
function prose(text, cls = 'desc') {
  const p = el('p', { class: cls });
  String(text || '').split('`').forEach((part, i) => {
    if (part) p.append(i % 2 ? el('code', {}, part) : document.createTextNode(part));
  });
  return p;
}

const refName = (ref) => ref.split('/').pop();
const schemaAnchor = (name) => `schema-${name}`;
const opAnchor = (method, path) => `op-${method}-${path.replace(/[^a-zA-Z0-9]+/g, '-')}`;

/** A one-line type expression of a schema, with links to named schemas. */
function typeOf(schema) {
  if (!schema || typeof schema !== 'object' || Object.keys(schema).length === 0) return el('span', { class: 'type' }, 'any');
  if (schema.$ref) {
    const name = refName(schema.$ref);
    return el('a', { class: 'type', href: `#${schemaAnchor(name)}` }, name);
  }
  for (const key of ['oneOf', 'anyOf']) {
    if (Array.isArray(schema[key])) {
      const parts = schema[key].map(typeOf);
      return el('span', {}, ...parts.flatMap((p, i) => (i ? [' | ', p] : [p])));
    }
  }
  if (Array.isArray(schema.allOf)) {
    const parts = schema.allOf.map(typeOf);
    return el('span', {}, ...parts.flatMap((p, i) => (i ? [' & ', p] : [p])));
  }
  if (Array.isArray(schema.enum)) {
    return el('span', { class: 'type' }, schema.enum.map((v) => JSON.stringify(v)).join(' | '));
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type || (schema.properties ? 'object' : 'any')];
  const parts = types.map((t) => {
    if (t === 'array') return el('span', {}, el('span', { class: 'type' }, 'array of '), typeOf(schema.items));
    if (t === 'object' && !schema.properties && schema.additionalProperties && typeof schema.additionalProperties === 'object') {
      return el('span', {}, el('span', { class: 'type' }, 'map of '), typeOf(schema.additionalProperties));
    }
    return el('span', { class: 'type' }, schema.format ? `${t} (${schema.format})` : t);
  });
  return el('span', {}, ...parts.flatMap((p, i) => (i ? [' | ', p] : [p])));
}

/** The constraints of a schema, as short text. */
function constraints(schema) {
  if (!schema || typeof schema !== 'object') return '';
  const out = [];
  const pairs = [
    ['minimum', '≥'], ['maximum', '≤'], ['exclusiveMinimum', '>'], ['exclusiveMaximum', '<'],
    ['minLength', 'min length'], ['maxLength', 'max length'], ['minItems', 'min items'], ['maxItems', 'max items'],
  ];
  for (const [k, label] of pairs) if (schema[k] !== undefined) out.push(`${label} ${schema[k]}`);
  if (schema.pattern) out.push(`pattern ${schema.pattern}`);
  if (schema.default !== undefined) out.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.example !== undefined) out.push(`e.g. ${JSON.stringify(schema.example)}`);
  if (schema.additionalProperties === false) out.push('no other fields');
  return out.join(' · ');
}

/** The properties of an object schema (own, and those of allOf parts inline). */
function propertyTable(schema) {
  const rows = [];
  const visit = (s) => {
    if (!s || typeof s !== 'object') return;
    const required = new Set(s.required || []);
    for (const [name, prop] of Object.entries(s.properties || {})) {
      rows.push(el('tr', {},
        el('td', { class: 'name' }, el('code', {}, name), required.has(name) ? el('span', { class: 'req' }, 'required') : null),
        el('td', {}, typeOf(prop), constraints(prop) ? el('div', { class: 'constraint' }, constraints(prop)) : null),
        el('td', {}, prop && prop.description ? prose(prop.description, 'desc') : null)));
    }
    (s.allOf || []).filter((p) => !p.$ref).forEach(visit);
  };
  visit(schema);
  if (!rows.length) return null;
  return el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'field'), el('th', {}, 'type'), el('th', {}, 'about'))), el('tbody', {}, rows));
}

/** A schema where it is used: its type, and an inline object's fields. */
function schemaBlock(schema) {
  const block = el('div', { class: 'schema' }, typeOf(schema));
  const c = constraints(schema);
  if (c) block.append(el('div', { class: 'constraint' }, c));
  if (schema && !schema.$ref && schema.description) block.append(prose(schema.description));
  if (schema && !schema.$ref) {
    const table = propertyTable(schema);
    if (table) block.append(table);
  }
  return block;
}

function contentList(content) {
  return Object.entries(content || {}).map(([type, media]) =>
    el('div', {}, el('span', { class: 'ctype' }, type), media && media.schema ? schemaBlock(media.schema) : null));
}

/** Resolves `#/components/responses/X` references. */
function resolveResponse(spec, response) {
  if (response && response.$ref) {
    return spec.components?.responses?.[refName(response.$ref)] || { description: response.$ref };
  }
  return response || {};
}

function authLabel(op, spec) {
  const reqs = op.security ?? spec.security ?? [];
  if (!reqs.length) return 'public';
  return reqs.map((r) => Object.keys(r).map((k) => AUTH_LABELS[k] || k).join(' + ') || 'public').join(' or ');
}

function renderOperation(spec, path, method, op) {
  const body = el('div', { class: 'body' });
  if (op.description) body.append(prose(op.description));
  const params = op.parameters || [];
  if (params.length) {
    body.append(el('h3', {}, 'Parameters'));
    body.append(el('table', {},
      el('thead', {}, el('tr', {}, el('th', {}, 'name'), el('th', {}, 'in'), el('th', {}, 'type'), el('th', {}, 'about'))),
      el('tbody', {}, params.map((p) => el('tr', {},
        el('td', { class: 'name' }, el('code', {}, p.name), p.required ? el('span', { class: 'req' }, 'required') : null),
        el('td', {}, p.in),
        el('td', {}, typeOf(p.schema), constraints(p.schema) ? el('div', { class: 'constraint' }, constraints(p.schema)) : null),
        el('td', {}, p.description ? prose(p.description) : null))))));
  }
  if (op.requestBody) {
    body.append(el('h3', {}, op.requestBody.required ? 'Request body (required)' : 'Request body'));
    if (op.requestBody.description) body.append(prose(op.requestBody.description));
    body.append(...contentList(op.requestBody.content));
  }
  body.append(el('h3', {}, 'Responses'));
  const rows = Object.entries(op.responses || {}).map(([status, raw]) => {
    const r = resolveResponse(spec, raw);
    const headers = Object.keys(r.headers || {});
    return el('tr', {},
      el('td', { class: `status-code s${status[0]}` }, status),
      el('td', {}, prose(r.description || ''), headers.length ? el('div', { class: 'constraint' }, `headers: ${headers.join(', ')}`) : null, ...contentList(r.content)));
  });
  body.append(el('table', {}, el('tbody', {}, rows)));
  const details = el('details', { class: 'op', id: opAnchor(method, path) },
    el('summary', {},
      el('span', { class: `method ${method}` }, method),
      el('span', { class: 'path' }, path),
      el('span', { class: 'summary' }, op.summary || ''),
      el('span', { class: 'auth' }, authLabel(op, spec))),
    body);
  return details;
}

function render(spec) {
  const doc = document.getElementById('doc');
  const nav = document.getElementById('nav');
  doc.replaceChildren();
  nav.replaceChildren();
  document.getElementById('version').textContent = `${spec.info?.title || ''} ${spec.info?.version || ''} · OpenAPI ${spec.openapi}`;
  doc.append(el('h1', {}, spec.info?.title || 'API'));
  if (spec.info?.description) doc.append(prose(spec.info.description, 'intro'));

  // Operations by tag, in the document's tag order (untagged last).
  const tags = (spec.tags || []).map((t) => ({ ...t, ops: [] }));
  const byName = new Map(tags.map((t) => [t.name, t]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const name = (op.tags && op.tags[0]) || 'other';
      if (!byName.has(name)) {
        const t = { name, ops: [] };
        byName.set(name, t);
        tags.push(t);
      }
      byName.get(name).ops.push({ path, method, op });
    }
  }
  for (const tag of tags.filter((t) => t.ops.length)) {
    nav.append(el('h4', {}, tag.name));
    const section = el('section', { class: 'tag', id: `tag-${tag.name}` }, el('h2', {}, tag.name));
    if (tag.description) section.append(prose(tag.description, ''));
    for (const { path, method, op } of tag.ops) {
      section.append(renderOperation(spec, path, method, op));
      nav.append(el('a', { href: `#${opAnchor(method, path)}` }, el('span', { class: `method ${method}` }, method), el('span', { class: 'path' }, path)));
    }
    doc.append(section);
  }

  const schemas = Object.entries(spec.components?.schemas || {}).sort(([a], [b]) => a.localeCompare(b));
  if (schemas.length) {
    nav.append(el('h4', {}, 'schemas'));
    const section = el('section', { class: 'tag schemas', id: 'schemas' }, el('h2', {}, 'Schemas'));
    for (const [name, schema] of schemas) {
      const def = el('div', { class: 'schema-def', id: schemaAnchor(name) }, el('h4', {}, name));
      if (schema.description) def.append(prose(schema.description));
      const table = propertyTable(schema);
      def.append(table || schemaBlock(schema));
      for (const part of schema.allOf || []) if (part.$ref) def.append(el('div', { class: 'constraint' }, 'with every field of ', typeOf(part)));
      section.append(def);
      nav.append(el('a', { href: `#${schemaAnchor(name)}` }, el('span', { class: 'path' }, name)));
    }
    doc.append(section);
  }
  // Open the operation a link points to.
  const target = location.hash && document.getElementById(location.hash.slice(1));
  if (target && target.tagName === 'DETAILS') target.open = true;
  document.body.dataset.ready = 'true';
}

async function main() {
  const status = document.getElementById('status');
  try {
    const res = await fetch(SPEC_URL, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`${SPEC_URL} answered ${res.status}`);
    render(await res.json());
  } catch (e) {
    status.textContent = `Cannot load the API description: ${e.message}`;
    status.classList.add('error');
  }
}

window.addEventListener('hashchange', () => {
  const target = document.getElementById(location.hash.slice(1));
  if (target && target.tagName === 'DETAILS') target.open = true;
});
main();
