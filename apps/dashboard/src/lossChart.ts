import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { EpochPoint } from './requesterOutputs.ts';

/** A training job's per-epoch loss (and validation loss when reported), plotted with uPlot. */
export function LossChart(props: { history: EpochPoint[]; jobId: string }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const h = props.history;
    const hasVal = h.some((p) => p.valLoss !== null && Number.isFinite(p.valLoss));
    const data: uPlot.AlignedData = [
      h.map((p) => p.epoch),
      h.map((p) => p.loss),
      ...(hasVal ? [h.map((p) => p.valLoss)] : []),
    ];
    const plot = new uPlot(
      {
        width: 520,
        height: 240,
        title: 'training loss (decrypted in this page)',
        scales: { x: { time: false } },
        axes: [{ label: 'epoch' }, { label: 'loss' }],
        series: [
          { label: 'epoch' },
          { label: 'loss', stroke: '#2563eb', width: 2 },
          ...(hasVal ? [{ label: 'validation loss', stroke: '#dc2626', width: 2 }] : []),
        ],
      },
      data,
      el.current,
    );
    return () => plot.destroy();
  }, [props.history]);
  return html`<div class="chart" data-loss-chart=${props.jobId} data-epochs=${props.history.length} ref=${el}></div>`;
}
