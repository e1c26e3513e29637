'use strict';
// Calls an access_auth route with the npm package aliyun-api-gateway
// (Alibaba Cloud's app signature, the gateway's `aliyun` scheme).
//
//   npm install
//   API_KEY=… API_SECRET=… node index.js http://localhost:8080/api/hello
//
// The client sends Content-MD5 for POST bodies only: a PUT body is an
// unsigned payload, accepted only by a route with allow_unsigned_payload.
const { Client } = require('aliyun-api-gateway');

async function main() {
  const [url] = process.argv.slice(2);
  if (!url || !process.env.API_KEY || !process.env.API_SECRET) {
    console.error('usage: API_KEY=… API_SECRET=… node index.js URL');
    process.exit(2);
  }
  const client = new Client(process.env.API_KEY, process.env.API_SECRET);
  const result = await client.post(url, { data: { hello: 'world' } });
  console.log(typeof result === 'string' ? result : JSON.stringify(result));
}

main().then(() => process.exit(0), (err) => {
  // Refusals carry the gateway's reason in X-Ca-Error-Message.
  console.error(err.message);
  process.exit(1);
});
