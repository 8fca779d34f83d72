import { createCanvas, GlobalFonts, type Canvas } from '@napi-rs/canvas';
import { Chart, registerables, type ChartConfiguration } from 'chart.js';
import type { UsageReport } from '../admin.ts';
import { resolveFontPath } from '../media/ffmpeg.ts';

Chart.register(...registerables);

let fontReady: Promise<void> | undefined;

/** The canvas has no system fonts to rely on: register the same DejaVu the preview title cards use. */
function ensureFont(): Promise<void> {
  fontReady ??= resolveFontPath().then((file) => {
    GlobalFonts.registerFromPath(file, 'DejaVu Sans');
    Chart.defaults.font.family = 'DejaVu Sans';
  });
  return fontReady;
}

const WIDTH = 1000;
const PANEL = 340;

/** Draws one chart onto `target` at `top`. */
function draw(target: Canvas, top: number, config: ChartConfiguration, width: number, height: number): void {
  const canvas = createCanvas(width, height);
  // chart.js draws on anything with the 2D context API; @napi-rs/canvas provides it without a DOM.
  const chart = new Chart(canvas.getContext('2d') as unknown as CanvasRenderingContext2D, {
    ...config,
    options: { ...config.options, responsive: false, animation: false, devicePixelRatio: 1 },
  });
  chart.draw();
  // Copy before destroy(): destroying a chart clears the canvas it drew on.
  target.getContext('2d').drawImage(canvas, 0, top);
  chart.destroy();
}

/**
 * The admins' "where did the credits go" picture: credits per member and credits per day for the
 * current period, as one PNG that both Discord (attachment) and Slack (App Home image) can show.
 */
export async function renderUsageChart(report: UsageReport): Promise<Buffer> {
  await ensureFont();
  const title = `Credits used ${report.periodKey}: ${report.total} of ${report.limit} (${report.available} left)`;
  const members = report.byMember.slice(0, 15);
  const sheet = createCanvas(WIDTH, PANEL * 2);
  const ctx = sheet.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, WIDTH, PANEL * 2);
  draw(sheet, 0, {
    type: 'bar',
    data: {
      labels: members.length ? members.map((m) => m.name) : ['nobody yet'],
      datasets: [{ label: 'credits per member', data: members.length ? members.map((m) => m.credits) : [0], backgroundColor: '#5865f2', maxBarThickness: 36 }],
    },
    options: { indexAxis: 'y', plugins: { title: { display: true, text: title, font: { size: 18 } }, legend: { display: false } } },
  }, WIDTH, PANEL);
  draw(sheet, PANEL, {
    type: 'bar',
    data: {
      labels: report.byDay.length ? report.byDay.map((d) => d.day) : ['-'],
      datasets: [{ label: 'credits per day', data: report.byDay.length ? report.byDay.map((d) => d.credits) : [0], backgroundColor: '#2eb67d', maxBarThickness: 48 }],
    },
    options: { plugins: { title: { display: true, text: 'Credits per day' }, legend: { display: false } } },
  }, WIDTH, PANEL);
  return sheet.toBuffer('image/png');
}
