import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { html } from 'htm/preact';
import { render } from 'preact';
import { App } from './App.ts';
import { createPageClient, type PageConfig } from './network.ts';

/** Entry: read /config.json from the dashboard server, then render the app against its read-only RPC proxy. */
async function main(): Promise<void> {
  const root = document.getElementById('app')!;
  try {
    const res = await fetch('/config.json');
    if (!res.ok) throw new Error(`config.json: ${res.status}`);
    const config = (await res.json()) as PageConfig;
    root.textContent = '';
    const client = createPageClient(new URL('/rpc', location.href).href);
    render(html`<${App} config=${config} client=${client} />`, root);
  } catch (e) {
    root.textContent = `cannot start the dashboard: ${(e as Error).message}`;
  }
}

void main();
