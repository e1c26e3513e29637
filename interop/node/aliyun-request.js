'use strict';
// Sends one request signed by the npm package aliyun-api-gateway and prints
// the outcome as JSON. Usage: node aliyun-request.js '<spec JSON>' where the
// spec is {key, secret, method: "get"|"post"|"put"|"delete", url, headers,
// query, data, signHeaders}.
const { Client } = require('aliyun-api-gateway');

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const client = new Client(spec.key, spec.secret);
  const opts = { headers: spec.headers || {}, query: spec.query, data: spec.data, signHeaders: spec.signHeaders };
  try {
    const result = await client[spec.method](spec.url, opts);
    console.log(JSON.stringify({ ok: true, result }));
  } catch (err) {
    const headers = (err.data && err.data.headers) || {};
    console.log(JSON.stringify({ ok: false, status: err.code, caErrorMessage: headers['x-ca-error-message'] || '', message: err.message }));
  }
}

main().then(() => process.exit(0)); // do not wait for kept-alive sockets
