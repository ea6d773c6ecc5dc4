// The API's docs page: reads /schema/openapi.json and shows each operation, its
// parameters, body, example and responses, and every schema. Every text from the
// document goes in with textContent; nothing is parsed as markup.

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};

const refName = (ref) => ref.split('/').pop();
let components = {};  // the document's schemas, by name

// A description: its `code` spans as code elements, the rest as text.
function prose(text, tag = 'p', attrs = {}) {
  const node = el(tag, attrs);
  String(text || '').split('`').forEach((part, i) => {
    node.append(i % 2 ? el('code', {}, part) : document.createTextNode(part));
  });
  return node;
}

function schemaLink(name) {
  return el('a', { href: `#schema-${name}` }, name);
}

// A schema as a line a person reads: its type, closed set and limits.
function typeOf(schema) {
  const out = el('span');
  if (!schema) return out;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    out.append(schemaLink(name));
    const target = components[name];
    if (target?.enum) {
      out.append(` (one of: ${target.enum.map((v) => JSON.stringify(v)).join(', ')})`);
    }
    if (schema.default !== undefined) out.append(` (default ${JSON.stringify(schema.default)})`);
    return out;
  }
  const alternatives = schema.anyOf || schema.oneOf;
  if (alternatives) {
    alternatives.forEach((s, i) => {
      if (i) out.append(' or ');
      out.append(typeOf(s));
    });
  } else if (schema.enum) {
    out.append('one of: ', schema.enum.map((v) => JSON.stringify(v)).join(', '));
  } else if (schema.type === 'array') {
    out.append('array of ', typeOf(schema.items));
  } else if (schema.type === 'object' && schema.additionalProperties) {
    out.append('object');
  } else {
    out.append([].concat(schema.type || 'any').join(' or '));
  }
  const limits = [];
  for (const key of ['format', 'minimum', 'maximum', 'minLength', 'maxLength', 'minItems',
    'maxItems', 'minProperties', 'pattern', 'default']) {
    if (schema[key] !== undefined) limits.push(`${key} ${JSON.stringify(schema[key])}`);
  }
  if (limits.length) out.append(` (${limits.join('; ')})`);
  return out;
}

function table(headings, rows) {
  const head = el('tr', {}, ...headings.map((h) => el('th', { scope: 'col' }, h)));
  return el('table', {}, el('thead', {}, head),
    el('tbody', {}, ...rows.map((cells) => el('tr', {}, ...cells.map((c) => el('td', {}, c))))));
}

function security(op) {
  const options = op.security;
  if (!options) return 'No key.';
  if (options.some((o) => Object.keys(o).length === 0)) {
    return 'Key: `Authorization: Bearer <key>` when reads need one (TIMELINE_READ_REQUIRES_KEY).';
  }
  return 'Key: `Authorization: Bearer <key>`.';
}

function operation(method, path, op) {
  const id = op.operationId || `${method}-${path}`;
  const box = el('details', { class: 'op', id: `op-${id}` });
  box.append(el('summary', {},
    el('span', { class: `method method-${method}` }, method.toUpperCase()),
    el('code', {}, path), el('span', { class: 'summary' }, op.summary || '')));
  box.append(prose(op.description));
  box.append(el('p', { class: 'opid' }, 'operationId: ', el('code', {}, op.operationId || '')));
  box.append(prose(security(op)));
  if (op.parameters?.length) {
    box.append(el('h3', {}, 'Parameters'));
    box.append(table(['name', 'in', 'type', 'description'], op.parameters.map((p) => [
      el('code', {}, p.name + (p.required ? ' (required)' : '')), p.in, typeOf(p.schema),
      prose(p.description, 'span')])));
  }
  if (op.requestBody) {
    box.append(el('h3', {}, 'Request body'));
    box.append(prose(op.requestBody.description));
    for (const [type, media] of Object.entries(op.requestBody.content || {})) {
      box.append(el('p', {}, el('code', {}, type), ': ', typeOf(media.schema)));
      if (media.example !== undefined) {
        box.append(el('p', {}, 'Example:'), el('pre', {}, JSON.stringify(media.example, null, 2)));
      }
    }
  }
  box.append(el('h3', {}, 'Responses'));
  box.append(table(['status', 'description', 'body'],
    Object.entries(op.responses || {}).map(([status, r]) => [
      el('code', {}, status), prose(r.description, 'span'),
      el('span', {}, ...Object.entries(r.content || {}).flatMap(([type, media]) =>
        [el('code', {}, type), ' ', typeOf(media.schema), ' '])),
    ])));
  return box;
}

function component(name, schema) {
  const box = el('div', { class: 'schema', id: `schema-${name}` }, el('h3', {}, name));
  if (schema.description) box.append(prose(schema.description));
  const required = new Set(schema.required || []);
  const properties = Object.entries(schema.properties || {});
  if (properties.length) {
    box.append(table(['field', 'type', 'description'], properties.map(([field, s]) => [
      el('code', {}, field + (required.has(field) ? ' (required)' : '')), typeOf(s),
      prose(s.description, 'span')])));
  } else {
    box.append(el('p', {}, typeOf(schema)));
  }
  if (schema.additionalProperties === false) box.append(el('p', {}, 'No other fields.'));
  return box;
}

async function main() {
  const doc = await (await fetch('/schema/openapi.json')).json();
  components = doc.components?.schemas || {};
  document.getElementById('title').textContent = `${doc.info.title} API ${doc.info.version}`;
  document.getElementById('intro').replaceWith(prose(doc.info.description));
  document.getElementById('auth').replaceWith(
    prose(doc.components?.securitySchemes?.bearer?.description));
  const main = document.getElementById('operations');
  const toc = document.getElementById('toc');
  main.textContent = '';
  const groups = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ['other'])[0];
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push([method, path, op]);
    }
  }
  for (const [tag, ops] of groups) {
    main.append(el('h2', { id: `tag-${tag}` }, tag));
    for (const [method, path, op] of ops) {
      main.append(operation(method, path, op));
      toc.append(el('li', {}, el('a', { href: `#op-${op.operationId}` },
        `${method.toUpperCase()} ${path}`), ` — ${op.summary || ''}`));
    }
  }
  const schemas = document.getElementById('schemas');
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    schemas.append(component(name, schema));
  }
  // A link to an operation opens it.
  const open = () => {
    const target = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (target?.tagName === 'DETAILS') target.open = true;
  };
  window.addEventListener('hashchange', open);
  open();
  document.body.dataset.ready = '1';
}

main();
