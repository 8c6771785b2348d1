/*
 * The HTTP floor: a bare node:http server (no framework, no parsing, no model) that reads each request
 * body and answers with the real reply's bytes, driven by the same client and body as the model
 * server. It measures what HTTP alone costs on this machine, with the load generator on the same cores.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { generateLoad, type Load, type LoadClient, type LoadResult } from './load.js';

export async function httpFloor(client: LoadClient, load: Load, reply: Buffer): Promise<LoadResult> {
  const source = `
    const http = require('node:http');
    const reply = Buffer.from(${JSON.stringify(reply.toString('base64'))}, 'base64');
    const server = http.createServer((req, res) => {
      req.on('data', () => {});
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': reply.length }); res.end(reply); });
    });
    server.listen(0, '127.0.0.1', () => console.log(server.address().port));`;
  const child = spawn(process.execPath, ['-e', source], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`floor server exited with ${code}`)));
    });
    const target = { ...load, url: `http://127.0.0.1:${port}${new URL(load.url).pathname}` };
    await generateLoad(client, { ...target, duration: 1 });
    return await generateLoad(client, target);
  } finally {
    child.kill('SIGTERM');
  }
}
