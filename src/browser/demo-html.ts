/** The HTML of `kiln browser-demo`'s page; its script is dist/browser/demo.js (src/web/demo-page.ts). */
export const DEMO_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kiln: train a CNN in this browser</title>
<style>
  body { font: 15px/1.45 system-ui, sans-serif; max-width: 760px; margin: 2em auto; padding: 0 1em; color: #222; }
  h1 { font-size: 1.4em; }
  canvas { border: 1px solid #ddd; width: 100%; }
  .warning { color: #9a6700; }
  .failed { color: #b00020; font-weight: 600; }
  .done { color: #1b5e20; }
  button { font-size: 1em; padding: 0.4em 1em; margin-right: 0.5em; }
  .legend span { margin-right: 1.5em; }
</style>
</head>
<body>
<h1>Train the tutorial CNN on Fashion-MNIST, here in the browser</h1>
<p>Kiln compiles one training step (forward, backward, Adam update) into an ONNX graph; ONNX Runtime Web runs it in a
Web Worker on this machine. The data (the 10,000-image subset shipped with Kiln) never leaves the page.</p>
<p id="environment"></p>
<p><button id="start">Train</button><button id="download" disabled>Download the trained model (.onnx)</button></p>
<p id="status">Press Train to start.</p>
<canvas id="chart" width="720" height="240"></canvas>
<p class="legend"><span style="color:#c0392b">■ running loss</span><span style="color:#2471a3">■ running accuracy</span> (each over the epoch so far, as Keras' progress bar shows them)</p>
<script type="module" src="kiln/demo.js"></script>
</body>
</html>
`;
